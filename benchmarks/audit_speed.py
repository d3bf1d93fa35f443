"""How long `reportgen params` takes to audit a published model (a benchmark, not a test; issue #26 asks for
under 10 s for resnet50 at 3×224×224 on the development machine).

    .venv/bin/python benchmarks/audit_speed.py [torchvision:resnet50] [--input 3x224x224] [--repeats 3]

Each repetition builds the model and runs what `reportgen params` runs: the parameter audit (one real forward
probe, torchinfo on shapes only) and the MAC count (our counter and FlopCounterMode in one shapes-only pass,
then torchinfo per layer). Printed per stage, then the line to track: `audit: N.NN s (median of R)`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from reportgen.measure.macs import count_macs
from reportgen.measure.params import audit_model, parse_input_shape
from reportgen.models.registry import create_model


def once(reference: str, shape: tuple[int, ...]) -> dict[str, float]:
    times, start = {}, time.perf_counter()
    model = create_model(reference)
    times["build"] = time.perf_counter() - start
    audit = audit_model(model, shape, name=reference)
    times["parameters"] = time.perf_counter() - start - sum(times.values())
    macs = count_macs(model, shape, -1 if audit.torchinfo_total < 0 else None)
    times["macs"] = time.perf_counter() - start - sum(times.values())
    times["total"] = time.perf_counter() - start
    print(
        "  ".join(f"{stage} {seconds:.2f} s" for stage, seconds in times.items()) + f"  ({macs.total:,} MACs)",
        flush=True,
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="torchvision:resnet50")
    parser.add_argument("--input", default="3x224x224")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shape = parse_input_shape(args.input)
    totals = [once(args.model, shape)["total"] for _ in range(args.repeats)]
    print(f"audit: {statistics.median(totals):.2f} s (median of {len(totals)}) for {args.model} at {args.input}")


if __name__ == "__main__":
    main()
