"""How long a class of hand-ins takes to grade (a benchmark, not a test; issue 35 asks for 100 hand-ins with the
PDF in under 60 s on the development machine).

    .venv/bin/python benchmarks/grading_scale.py [--size 100] [--lang ko]

Makes `--size` hand-ins from the golden run grade-b (tests/class_fixtures.py: one model each, its own author,
seed and predictions, the assignment checklist archived), then renders them as `reportgen render` does: with
the PDF and the per-student sections, then `--summary-only`. Prints the wall time, the peak memory of the
render and the PDF's page count and size for each, then the line to track: `grading N hand-ins: S s with the
PDF (P pages)`.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the class fixtures live with the tests

from class_fixtures import make_class

from reportgen.cli import main as reportgen


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def render(runs: list[Path], out: Path, lang: str, *extra: str) -> tuple[float, Path]:
    start = time.perf_counter()
    code = reportgen(["render", *map(str, runs), "--lang", lang, "-o", str(out), *extra])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"render exited {code}")
    return seconds, next(out.glob("combined-*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--lang", default="ko")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grading-scale-") as work:
        root = Path(work)
        runs = make_class(root / "runs", args.size)
        results = {}
        for name, extra in (("full", ()), ("summary-only", ("--summary-only",))):
            seconds, folder = render(runs, root / name, args.lang, *extra)
            pdf = folder / "report.pdf"
            results[name] = (seconds, pages(pdf))
            print(
                f"{name}: {seconds:.1f} s, {pages(pdf)} PDF pages, {pdf.stat().st_size / 1e6:.1f} MB PDF, "
                f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
                flush=True,
            )
        seconds, count = results["full"]
        print(f"grading {args.size} hand-ins: {seconds:.1f} s with the PDF ({count} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
