"""The speed benchmark runs (smoke mode, a real subprocess per side) and prints every figure it promises:
train and eval seconds per side, GFLOP/s beside the measured GEMM peak, per-side peak RSS, and whether
the engine's variants train bit-identical weights. No timing is asserted: timings belong to the benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


@pytest.mark.usefixtures("fashion_mnist_dir")
def test_the_benchmark_prints_every_figure_per_side():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--threads", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(rf"fp32 GEMM peak here: {NUMBER} GFLOP/s", done.stdout), done.stdout
    rows = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(
            rf"^(textbook|engine|engine-foreach) +idle +({NUMBER}) +({NUMBER}) +({NUMBER})% +({NUMBER}) +({NUMBER})% +"
            rf"([0-9]+) +(yes|no|-)$",
            done.stdout,
            re.MULTILINE,
        )
    }
    assert rows.keys() == {"textbook", "engine", "engine-foreach"}, done.stdout
    assert rows["engine"][-1] == "yes" and rows["textbook"][-1] == "-"
    assert all(float(row[0]) > 0 and float(row[3]) > 0 and int(row[5]) > 100 for row in rows.values())
