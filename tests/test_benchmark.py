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


DURATIONS_SCRIPT = SCRIPT.with_name("suite_durations.py")
ROOT = SCRIPT.parents[1]
PROBE = """
import time

import pytest


@pytest.fixture(scope="module")
def shared():
    time.sleep(1.0)


def test_first(shared):
    pass


def test_second(shared):
    pass


def test_alone():
    pass


def test_broken():
    assert False
"""


def test_the_durations_script_charges_a_shared_fixture_to_every_test_that_uses_it(tmp_path):
    """Run alone (as `-m "not slow"` may leave it), the second user of a module fixture pays its setup: the
    script counts it there too, and takes no figure from a failing test."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    output = tmp_path / "durations.json"
    done = subprocess.run(
        [sys.executable, str(DURATIONS_SCRIPT), "--output", str(output), "--threshold", "0.5", "--", "test_probe.py"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # test_broken fails
    measured = __import__("json").loads(output.read_text())
    tests = {nodeid.split("::")[-1]: seconds for nodeid, seconds in measured["tests"].items()}
    assert tests.keys() == {"test_first", "test_second", "test_alone"}, measured
    assert tests["test_first"] >= 1.0 and tests["test_second"] >= 1.0, measured  # the sleep is a lower bound
    assert measured["fixtures"]["shared"] >= 1.0 and measured["threshold_s"] == 0.5, measured
    assert [nodeid.split("::")[-1] for nodeid in measured["failed"]] == ["test_broken"], measured


def test_the_slow_marker_follows_the_measured_durations():
    """`-m slow` and `-m "not slow"` split the collected tests by tests/durations.json's threshold."""
    measured = __import__("json").loads((ROOT / "tests" / "durations.json").read_text())
    threshold, figures = measured["threshold_s"], measured["tests"]

    def collected(expression: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", expression]
            + ["--continue-on-collection-errors"],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return {line for line in done.stdout.splitlines() if line.startswith("tests/") and "::" in line}

    slow, fast = collected("slow"), collected("not slow")
    assert slow and fast and not slow & fast
    assert all(figures[nodeid] >= threshold for nodeid in slow if nodeid in figures)
    assert all(figures[nodeid] < threshold for nodeid in fast if nodeid in figures)
    assert {nodeid for nodeid, seconds in figures.items() if seconds >= threshold} & slow  # the file is read
