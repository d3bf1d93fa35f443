"""The speed benchmark runs (smoke mode, a real child process per side) and prints every figure it promises:
train s/epoch and eval s per side, per-side peak RSS, GFLOP/s beside the measured GEMM peak, the table under
load, the no_grad/inference_mode evaluation A/B, and the lines to track: the engine's speed-up over the
textbook loop (with the share of the GEMM ceiling) and the wall time of a real `reportgen run`. No timing is
asserted: timings belong to the benchmark, which prints them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"
ROW = re.compile(
    rf"^(?P<side>[a-z-]+) +(?P<threads>[0-9]+) +(?P<load>idle|busy) +(?P<train_s>{NUMBER}) +(?P<gflops>{NUMBER}) +"
    rf"(?P<peak_pct>{NUMBER})% +(?P<eval_s>{NUMBER}) +(?P<acc>{NUMBER})% +(?P<rss_mb>[0-9]+) +(?P<identical>yes|no|-)$",
    re.MULTILINE,
)
SPEED_UP = re.compile(
    rf"^engine speed-up: (?P<ratio>{NUMBER})x \(training \+ evaluation per epoch: textbook (?P<textbook>{NUMBER}) s, "
    rf"engine (?P<engine>{NUMBER}) s; cpu, 1 thread\(s\), batch 64; test accuracy textbook {NUMBER}%, engine "
    rf"{NUMBER}%\); the engine's training computes (?P<peak_pct>{NUMBER})% of the fp32 GEMM ceiling$",
    re.MULTILINE,
)
REPORT = re.compile(
    r"^default report: (?P<seconds>[0-9]+) s \(reportgen run --models mlp .*, HTML \+ PDF; ", re.MULTILINE
)


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_dir")
def test_the_benchmark_prints_every_figure_per_side_and_the_lines_to_track():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--threads", "1", "--sides", "textbook,engine,engine-foreach"]
        + ["--load", "--load-sides", "engine", "--load-threads", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(rf"^fp32 GEMM peak here, cpu, 1 thread\(s\): {NUMBER} GFLOP/s$", out, re.MULTILINE), out
    rows = {(m["side"], m["load"]): m for m in ROW.finditer(out)}
    # the idle engine row appears in both tables (measured once); the busy one only under load
    assert rows.keys() == {("textbook", "idle"), ("engine", "idle"), ("engine-foreach", "idle"), ("engine", "busy")}
    for row in rows.values():
        assert float(row["train_s"]) > 0 and float(row["eval_s"]) > 0 and float(row["gflops"]) > 0, row[0]
        assert int(row["rss_mb"]) > 100, row[0]  # torch + Fashion-MNIST in each child: its own high-water mark
    assert rows["engine", "idle"]["identical"] == "yes" and rows["textbook", "idle"]["identical"] == "-"
    assert rows["engine", "busy"]["identical"] == "yes"  # a competing process changes the time, not the weights
    assert re.search(rf"no_grad {NUMBER} s, inference_mode {NUMBER} s", out), out
    assert out.count("load average") >= 3, out  # at start and after each table: the noise is on record
    # the headline is the table's own figures: textbook over engine, training + evaluation, same threads
    speed_up = SPEED_UP.search(out)
    assert speed_up, out
    textbook, engine = rows["textbook", "idle"], rows["engine", "idle"]
    assert float(speed_up["textbook"]) == pytest.approx(
        float(textbook["train_s"]) + float(textbook["eval_s"]), abs=0.02
    )
    assert float(speed_up["engine"]) == pytest.approx(float(engine["train_s"]) + float(engine["eval_s"]), abs=0.02)
    ratio = float(speed_up["textbook"]) / float(speed_up["engine"])  # of the rounded seconds: a looser match
    assert float(speed_up["ratio"]) == pytest.approx(ratio, rel=0.03), out
    assert float(speed_up["peak_pct"]) == pytest.approx(float(engine["peak_pct"]), abs=0.1)
    report = REPORT.search(out)  # a real run, in a temporary folder, that wrote its HTML and PDF
    assert report and int(report["seconds"]) > 0, out


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_dir")
def test_without_both_sides_the_speed_up_says_why_and_no_report_is_timed_when_asked_not_to():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "1", "--train-subset", "500", "--threads", "1", "--sides", "engine"]
        + ["--no-report"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "engine speed-up: not measured (--sides needs textbook and engine)" in done.stdout.splitlines()
    assert "default report:" not in done.stdout


def test_a_bad_list_is_refused_with_one_line():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sides", "engine,warp-drive"], check=False, capture_output=True, text=True
    )
    assert done.returncode == 2 and "warp-drive" in done.stderr.splitlines()[-1], done.stderr
