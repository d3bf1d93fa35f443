"""Shared fixtures: small IDX files written by the tests, the real Fashion-MNIST where a test needs it, CLI runner."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import signal
import struct
import sys
import warnings
from pathlib import Path

import pytest
import torch

from reportgen.cli import main
from reportgen.data import datasets

# Points the tests (and the package, in this process) at another Fashion-MNIST folder, e.g. a missing one to
# see what a machine without dataset-fashion-mnist reports.
FASHION_DIR_VARIABLE = "REPORTGEN_FASHION_MNIST_DIR"
if os.environ.get(FASHION_DIR_VARIABLE):
    datasets.FASHION_MNIST_DIR = Path(os.environ[FASHION_DIR_VARIABLE])
FASHION_MNIST_DIR = datasets.FASHION_MNIST_DIR

FAST = ["--train-subset", "1500", "--test-subset", "300", "--epochs", "2", "--batch-size", "100"]
# A small local run on the IDX sets below: the options most CLI tests share.
LOCAL_RUN = ["--batch-size", "50", "--executor", "local", "--no-pdf"]


@pytest.fixture(autouse=True)
def ctrl_c_as_a_terminal_gives_it(request):
    """Every test starts with Ctrl-C as a foreground command has it: the default handler, not blocked. A child
    inherits an ignored SIGINT or a blocked one across exec, so one test that leaves this worker process so
    (library code run in-process) made a later test's `reportgen run` ignore its Ctrl-C and exit 0: a failure
    that came and went with the order pytest-xdist gave the tests. Restored after each test, and named."""
    yield
    changed = []
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        changed.append(f"SIGINT handler {signal.getsignal(signal.SIGINT)!r}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.SIGINT in signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}):
        changed.append("SIGINT blocked")
    if changed:
        warnings.warn(f"{request.node.nodeid} left {', '.join(changed)}; restored", stacklevel=1)


# Runs `command` as a terminal starts a foreground job: SIGINT at its default action, whatever this test
# process inherited or was left with (a child keeps an ignored signal across exec).
_AS_IN_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def as_in_a_terminal(command: list[str]) -> list[str]:
    """`command` (a full argv, its program first) wrapped to start with Ctrl-C handled as in a terminal."""
    return [sys.executable, "-c", _AS_IN_A_TERMINAL, *command]


def idx_run_args(idx: Path, dataset: str = "mnist", epochs: int = 1) -> list:
    return ["--dataset", dataset, "--data-dir", idx, "--epochs", str(epochs), *LOCAL_RUN]


def write_idx(path: Path, tensor: torch.Tensor, gz: bool = False) -> Path:
    """Write a uint8 tensor as an IDX file (images (N, H, W) or labels (N,))."""
    data = tensor.to(torch.uint8).contiguous()
    header = struct.pack(">I", 0x800 + data.dim()) + b"".join(struct.pack(">I", d) for d in data.shape)
    payload = header + data.numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 50, gz: bool = False, seed: int = 0) -> Path:
    """A small learnable MNIST-like IDX set: class k is a bright square at a class-specific place."""
    g = torch.Generator().manual_seed(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = torch.randint(0, 10, (n,), generator=g)
        images = torch.randint(0, 40, (n, 28, 28), generator=g)
        for i, label in enumerate(labels.tolist()):
            row, col = divmod(label, 5)
            images[i, 4 + row * 10 : 12 + row * 10, 2 + col * 5 : 7 + col * 5] = 250
        write_idx(folder / f"{split}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, gz)
    return folder


def thread_priorities(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of process `pid` (by thread id): its nice value and scheduling policy, the 19th and 41st
    fields of its /proc stat line (the 2nd, its name, may hold spaces). Threads that end meanwhile are left out."""
    priorities = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        priorities[int(task.name)] = (int(fields[16]), int(fields[38]))
    return priorities


def one_error_line(err: str) -> str:
    """The CLI's promise for bad input: exactly one line on stderr, no traceback."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("reportgen: error:"), err
    return lines[0]


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return write_idx_dataset(tmp_path / "idx")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the CLI in a fresh folder so runs/ and output/ start empty."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The real Fashion-MNIST of the Debian package. Tests that need it (real accuracy, the published
    results, the package's checksums) fail where it is missing instead of skipping: a skipped check of the
    real data reads as a pass. Everything else runs on the small IDX sets above."""
    if not FASHION_MNIST_DIR.is_dir():
        pytest.fail(
            f"Fashion-MNIST is missing ({FASHION_MNIST_DIR}): install dataset-fashion-mnist (`make test` does it)",
            pytrace=False,
        )
    return FASHION_MNIST_DIR


requires_fashion = pytest.mark.usefixtures("fashion_mnist_dir")


@pytest.fixture(scope="session")
def finished(tmp_path_factory, fashion_mnist_dir) -> Path:
    """One real default-experiment run (3 models, subsets, 2 epochs) shared by the report tests. It trains, so
    every test that uses it is marked slow (tests/test_tiers.py checks that)."""
    root = tmp_path_factory.mktemp("e2e")
    code = main(
        ["run", *FAST, "--run-id", "e2e", "--runs-dir", str(root / "runs"), "--output-dir", str(root / "output")]
    )
    assert code == 0
    return root


GOLDEN_RUNS = Path(__file__).resolve().parent / "golden" / "runs"


class GoldenReports:
    """The golden fixture runs (tests/golden/runs), each set of runs rendered once per language with every
    document and its PDF, shared read-only by the tests that read them (golden, plain words, print quality, page
    count, figure access, per-class quality): a report takes seconds to render and many modules read the same
    one. The HTML, Markdown and tables do not depend on whether the PDF is written (the PDF is made from the
    same page). A test that changes a report or renders with other options renders its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(GOLDEN_RUNS, root / "runs")
        self.folders: dict[tuple, Path] = {}
        self.pdf_errors: dict[Path, list[str]] = {}  # what WeasyPrint logged as errors while writing each PDF

    def __call__(self, runs: list[str], lang: str, allow_incomplete: bool = False) -> Path:
        key = (tuple(runs), lang, allow_incomplete)
        if key not in self.folders:
            self.folders[key] = self._render(runs, lang, allow_incomplete)
        return self.folders[key]

    def _render(self, runs: list[str], lang: str, allow_incomplete: bool) -> Path:
        from reportgen.report.documents import RenderOptions
        from reportgen.report.render import render_report

        paths = [self.root / "runs" / run for run in runs]
        output = self.root / f"{'+'.join(runs)}-{lang}"
        errors, logger = _LoggedErrors(), logging.getLogger("weasyprint")
        logger.addHandler(errors)
        try:
            folder = render_report(
                paths if len(paths) > 1 else paths[0], RenderOptions(output, lang, allow_incomplete=allow_incomplete)
            )
        finally:
            logger.removeHandler(errors)
        self.pdf_errors[folder] = errors.messages
        return folder


class _LoggedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="session")
def golden_reports(tmp_path_factory) -> GoldenReports:
    """Renders golden fixture runs on first use (see GoldenReports); every test that uses it is marked slow."""
    return GoldenReports(tmp_path_factory.mktemp("golden-reports"))


# The test files that read golden_reports. On `make test`'s two xdist workers (--dist loadfile) they run on one
# worker together, so each golden case is rendered once, not once per worker; a file missing here still
# passes, it only renders again.
GOLDEN_READERS = frozenset(
    {
        "test_golden.py",
        "test_plain_words.py",
        "test_print_quality.py",
        "test_page_count.py",
        "test_figure_access.py",
        "test_per_class_and_calibration.py",
    }
)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without xdist, never called
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile` (a file's tests on one worker), with the GOLDEN_READERS as one unit."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedRenders(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:  # the unit of work a node id belongs to
            file = super()._split_scope(nodeid)
            return "golden readers" if Path(file).name in GOLDEN_READERS else file

    return SharedRenders(config, log)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/reportgen."""
    import os

    previous = os.environ.get("REPORTGEN_CACHE")
    os.environ["REPORTGEN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("REPORTGEN_CACHE", None)
    else:
        os.environ["REPORTGEN_CACHE"] = previous


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/expected from the current code (then review `git diff tests/golden`)",
    )
