"""Measure what each test costs and write tests/durations.json, which splits the suite into two tiers.

    .venv/bin/python benchmarks/suite_durations.py                          # the whole suite, once (~9 minutes)
    .venv/bin/python benchmarks/suite_durations.py -- tests/test_x.py       # re-measure one file's tests
    .venv/bin/python benchmarks/suite_durations.py --fixtures-only          # only the shared fixtures' setup
    .venv/bin/python benchmarks/suite_durations.py --no-run --threshold 2   # re-sort the last measurement

A test's cost is what running it alone costs: its setup, call and teardown, plus the setup of every module-
or session-scoped fixture it uses that an earlier test set up (a `-m "not slow"` run that deselects the first
user of a shared fixture makes the next one pay it). tests/conftest.py marks `slow` every test whose cost
is at least the threshold written in the file; `make test-fast` runs the others (`pytest -m "not slow"`). A
test the file does not know (added since) is slow if a shared fixture it uses costs that much (the file
lists them), else it runs in the fast tier until it is measured. Measure on a quiet machine: the load
average at the start and the end is written beside the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = ROOT / "tests" / "durations.json"
SCOPE_NODES = {"class": pytest.Class, "module": pytest.Module, "package": pytest.Package}


class Recorder:
    """A pytest plugin: per test, the phases' durations, whether one failed, and the shared fixtures it uses;
    per shared fixture instance set up without error, its own setup time (its dependencies' excluded) and the
    test that set it up. A failure says nothing of what a passing run costs: those figures are not taken."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = defaultdict(float)
        self.uses: dict[str, set[tuple]] = {}
        self.fixture_cost: dict[tuple, float] = {}
        self.set_up_by: dict[tuple, str] = {}
        self.failed: set[str] = set()
        self.current = ""
        self.stack: list[float] = []  # time spent in nested fixture setups, per open setup

    @staticmethod
    def holder(scope: str, item: pytest.Item) -> str:
        """The node a shared fixture instance belongs to (a class-scoped one outside a class: the module's)."""
        if scope == "session":
            return item.session.nodeid
        node = item.getparent(SCOPE_NODES[scope]) or item.getparent(pytest.Module)
        return node.nodeid if node else ""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        self.current = item.nodeid
        fixturedefs = getattr(item, "_fixtureinfo", None)
        shared = set()
        for name in item.fixturenames:
            defs = fixturedefs.name2fixturedefs.get(name) if fixturedefs else None
            if defs and defs[-1].scope != "function":
                shared.add((name, defs[-1].baseid, self.holder(defs[-1].scope, item)))
        self.uses[item.nodeid] = shared
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
        started, failed = time.perf_counter(), True
        self.stack.append(0.0)
        try:
            value = yield
            failed = False
            return value
        finally:
            elapsed = time.perf_counter() - started
            nested = self.stack.pop()
            if self.stack:
                self.stack[-1] += elapsed
            if fixturedef.scope != "function" and not failed:
                key = (fixturedef.argname, fixturedef.baseid, request.node.nodeid)
                self.fixture_cost[key] = max(self.fixture_cost.get(key, 0.0), elapsed - nested)
                self.set_up_by.setdefault(key, self.current)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.phases[report.nodeid] += report.duration
        if report.failed:
            self.failed.add(report.nodeid)

    def shared_fixtures(self) -> dict[str, float]:
        """The costliest setup of each module- or session-scoped fixture, by name."""
        costs: dict[str, float] = {}
        for (name, _, _), seconds in self.fixture_cost.items():
            costs[name] = max(costs.get(name, 0.0), seconds)
        return costs

    def costs(self) -> dict[str, float]:
        return {
            nodeid: seconds
            + sum(
                self.fixture_cost.get(key, 0.0)
                for key in self.uses.get(nodeid, ())
                if self.set_up_by.get(key) != nodeid
            )
            for nodeid, seconds in self.phases.items()
            if nodeid not in self.failed
        }


HOW = (
    "benchmarks/suite_durations.py: seconds each test costs alone (setup + call + teardown + the shared fixtures "
    "an earlier test set up); tests/conftest.py marks `slow` those at or above threshold_s, and a test not listed "
    "here that uses a shared fixture (module or session scope) whose setup alone costs that much"
)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def tiers(costs: dict[str, float], threshold: float) -> str:
    slow = {k: v for k, v in costs.items() if v >= threshold}
    fast = sum(v for k, v in costs.items() if k not in slow)
    return (
        f"threshold {threshold:g} s: {len(slow)} slow tests ({sum(slow.values()):.0f} s), "
        f"{len(costs) - len(slow)} fast ({fast:.0f} s of tests)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, help="seconds alone from which a test is slow (default: as before)")
    parser.add_argument("--no-run", action="store_true", help="only re-sort the last measurement by --threshold")
    parser.add_argument(
        "--fixtures-only", action="store_true", help="only re-measure the shared fixtures (pytest --setup-only)"
    )
    parser.add_argument("--output", type=Path, default=DURATIONS)
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest arguments (default: testpaths, tests/)")
    args = parser.parse_args()
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    threshold = args.threshold or previous.get("threshold_s", 1.0)
    if args.no_run:
        previous["threshold_s"] = threshold
        args.output.write_text(json.dumps(previous, indent=1) + "\n")
        print(tiers(previous["tests"], threshold))
        return 0
    recorder = Recorder()
    at_start, started = load_average(), time.perf_counter()
    options = ["-q", "-p", "no:cacheprovider", "--durations=15", "--continue-on-collection-errors"]
    options += ["--setup-only"] if args.fixtures_only else []
    code = pytest.main([*options, *args.pytest_args], plugins=[recorder])
    wall = time.perf_counter() - started
    run = {
        "measured": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, load average {at_start} at the start, {load_average()} at the end",
        "pytest_exit_code": int(code),
        "failed": sorted(recorder.failed),
        "wall_s": round(wall, 1),
    }
    costs, fixtures = ({} if args.fixtures_only else recorder.costs()), recorder.shared_fixtures()
    if previous and (args.pytest_args or args.fixtures_only):  # some re-measured: their new figures replace old
        measured = previous | {"threshold_s": threshold}
        again = ["--setup-only"] if args.fixtures_only else []
        measured["remeasured"] = [*previous.get("remeasured", []), {"pytest_args": again + args.pytest_args, **run}]
        costs, fixtures = previous.get("tests", {}) | costs, previous.get("fixtures", {}) | fixtures
    else:  # the whole suite: a new file, with the last figures of the tests that failed this time
        measured = {"how": HOW, **run, "threshold_s": threshold}
        known = previous.get("tests", {})
        costs |= {k: known[k] for k in recorder.failed if k in known}
        fixtures = previous.get("fixtures", {}) | fixtures
    measured["fixtures"] = {k: round(v, 3) for k, v in sorted(fixtures.items(), key=lambda kv: -kv[1])}
    measured["tests"] = {k: round(v, 3) for k, v in sorted(costs.items(), key=lambda kv: -kv[1])}
    args.output.write_text(json.dumps(measured, indent=1) + "\n")
    print(f"\n{args.output}: {len(costs)} tests, this run {wall:.0f} s wall; {tiers(measured['tests'], threshold)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
