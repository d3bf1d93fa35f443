"""RayExecutor on real Ray instances bound to 127.0.0.1: same archive as a local run, a worker killed with
SIGKILL mid-trial (retried, resumed), a trial that raises (recorded failed, its sibling completes)."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

# Ray reads these when it is imported, and every Ray process of these tests inherits them: no usage
# stats, and token authentication with a throwaway token (nothing read from or written to ~/.ray).
# setdefault: a Ray worker importing this module (test_ray:Exploding) keeps the token it was started with.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
for _key, _value in RAY_ENV.items():
    os.environ.setdefault(_key, _value)

ray = pytest.importorskip("ray")
import psutil
import torch
from conftest import requires_fashion
from torch import nn

from reportgen.errors import ModelError
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.ray_executor import RayExecutor, RayExecutorError
from reportgen.run.runner import RunFailedError, run_experiment
from reportgen.spec import load_spec
from reportgen.train import choose_threads

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CPUS = len(os.sched_getaffinity(0))  # the local Ray instance's size
THREADS = choose_threads()  # a local run trains with this many threads; Ray tasks get the same

SWEEP = """
name = "ray sweep"
[data]
train_subset = 1500
test_subset = 300
[train]
epochs = 2
batch_size = 100
lr = [0.1, 0.01]
[[models]]
name = "mlp"
"""

LONG = """
name = "ray worker death"
[data]
train_subset = 10000
test_subset = 500
[train]
epochs = 3
batch_size = 100
[[models]]
name = "lenet5"
"""

FAILING = """
name = "ray failing trial"
[data]
train_subset = 500
test_subset = 100
[train]
epochs = 1
batch_size = 100
[[models]]
name = "mlp"
[[models]]
name = "test_ray:Exploding"
label = "exploding"
"""


class Exploding(nn.Module):
    """Passes the pre-flight audit (eval mode), raises on its first training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("exploded on purpose")
        return self.net(x)


pytestmark = requires_fashion


def spec_file(tmp_path: Path, text: str):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return load_spec(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProcessWatch:
    """Samples the descendants of `root`, and the addresses they and `root` listen on, while the block runs."""

    def __init__(self, root: psutil.Process) -> None:
        self.root, self.seen, self.listening = root, {}, set()
        # processes that were already there (e.g. multiprocessing's resource tracker) are not the block's
        self.before = {(p.pid, p.create_time()) for p in root.children(recursive=True)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)

    def sample(self) -> None:
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            return
        for proc in [self.root, *children]:
            try:
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            if proc is not self.root and key not in self.before:
                self.seen.setdefault(key, proc)
            try:
                self.listening |= {
                    c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
                }
            except psutil.Error:
                pass

    def __enter__(self) -> "ProcessWatch":  # noqa: PYI034 (typing.Self needs 3.11 annotations here)
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def leftovers(self, timeout: float = 15) -> list[str]:
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=timeout)
        return [f"{p.pid} {p.name()}" for p in alive if p.is_running()]


def loopback_only(addresses: set[str]) -> bool:
    return all(a in ("127.0.0.1", "::ffff:127.0.0.1") for a in addresses)


@contextmanager
def head_node(num_cpus: int):
    """`ray start --head --block` on 127.0.0.1 with its own temp dir; SIGTERM stops exactly its processes."""
    temp = Path(tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp"))  # short: Ray's socket paths must fit
    port = free_port()
    env = os.environ | {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keep 127.0.0.1 (see ray_executor._loopback_only)
    with open(temp / "head.log", "w") as log:
        head = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                f"--num-cpus={num_cpus}",
                "--num-gpus=0",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                "--disable-usage-stats",
                f"--temp-dir={temp}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    watch = ProcessWatch(psutil.Process(head.pid))
    try:
        deadline = time.time() + 60
        while not (temp / "ray_current_cluster").exists():
            assert head.poll() is None and time.time() < deadline, (temp / "head.log").read_text()
            time.sleep(0.1)
        with watch:
            yield f"127.0.0.1:{port}", temp, watch
    finally:
        watch.sample()
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(60)
        finally:
            left = watch.leftovers()
            for proc in watch.seen.values():
                if proc.is_running():
                    proc.kill()
            shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


@pytest.fixture(scope="module", autouse=True)
def _ray_environment():
    yield
    for key, value in RAY_ENV.items():  # leave the environment of later test modules as it was
        if os.environ.get(key) == value:
            del os.environ[key]


@pytest.fixture(scope="module")
def cluster():
    with head_node(CPUS) as node:
        yield node


def task_name(proc: psutil.Process) -> str:
    """A Ray worker's process title: ray::<task name> while it runs a task."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


class WorkerKiller(threading.Thread):
    """SIGKILLs the Ray worker running a trial as soon as the trial's first epoch checkpoint exists."""

    def __init__(self, head: psutil.Process, run_path: Path, trial_id: str) -> None:
        super().__init__(daemon=True)
        self.head, self.trial_id, self.killed, self.problem = head, trial_id, None, ""
        self.checkpoint = run_path / "trials" / trial_id / "checkpoint.pt"  # written atomically per epoch
        self.start()

    def run(self) -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.checkpoint.exists():
                workers = [
                    p
                    for p in self.head.children(recursive=True)
                    if task_name(p).startswith(f"ray::reportgen-trial-{self.trial_id}")
                ]
                if workers:
                    workers[0].send_signal(signal.SIGKILL)
                    self.killed = workers[0]
                    return
            time.sleep(0.02)
        self.problem = f"no worker was running trial {self.trial_id} after its first epoch"

    def check(self) -> None:
        self.join(5)
        assert self.killed is not None, self.problem
        assert not self.killed.is_running() or self.killed.status() == psutil.STATUS_ZOMBIE


def metrics_only(run: ArchiveReader, trial_id: str) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in run.trial(trial_id)["epochs"]]


def assert_same_trials(a: ArchiveReader, b: ArchiveReader) -> None:
    assert a.trial_ids() == b.trial_ids()
    for trial_id in a.trial_ids():
        info_a, info_b = a.trial(trial_id), b.trial(trial_id)
        info_a.pop("epochs"), info_b.pop("epochs")
        cost_a, cost_b = info_a["audit"].pop("cost"), info_b["audit"].pop("cost")  # latency: measured timings
        assert cost_a["macs"] == cost_b["macs"] and cost_a["state_dict_bytes"] == cost_b["state_dict_bytes"]
        assert info_a == info_b  # status, config, audit
        assert metrics_only(a, trial_id) == metrics_only(b, trial_id)  # exact: same data, order, threads
        assert (a.trial_dir(trial_id) / "predictions.csv").read_bytes() == (
            b.trial_dir(trial_id) / "predictions.csv"
        ).read_bytes()
        wa = torch.load(a.trial_dir(trial_id) / "model.pt", weights_only=True)
        wb = torch.load(b.trial_dir(trial_id) / "model.pt", weights_only=True)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_ray_sweep_archives_exactly_what_a_local_run_does(tmp_path):
    spec = spec_file(tmp_path, SWEEP)
    local = run_experiment(spec, tmp_path / "runs", "local", log=lambda line: None)
    lines: list[str] = []
    temp = tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp")
    try:
        with ProcessWatch(psutil.Process(os.getpid())) as watch:
            distributed = run_experiment(
                spec,
                tmp_path / "runs",
                "ray",
                log=lines.append,
                executor=RayExecutor(cpus_per_trial=THREADS, num_cpus=CPUS, temp_dir=temp),
            )
        assert not ray.is_initialized()  # the executor stopped the instance it started
        assert watch.seen and not watch.leftovers(), "Ray processes left behind"
        assert watch.listening and loopback_only(watch.listening), watch.listening
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    for run in (local, distributed):
        assert run.status()["state"] == "complete" and run.verify() == []
    assert_same_trials(local, distributed)
    assert sorted(line.split(" (")[0] for line in lines if line.startswith("trial ")) == [
        "trial 000-mlp",
        "trial 001-mlp",
    ]
    assert all(": complete [" in line for line in lines if line.startswith("trial "))


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_from_its_checkpoint(tmp_path, cluster):
    address, temp, watch = cluster
    spec = spec_file(tmp_path, LONG)
    reference = run_experiment(spec, tmp_path / "runs", "reference", log=lambda line: None)
    killer = WorkerKiller(watch.root, tmp_path / "runs" / "killed", "000-lenet5")
    with ProcessWatch(psutil.Process(os.getpid())) as driver:
        run = run_experiment(
            spec,
            tmp_path / "runs",
            "killed",
            log=lambda line: None,
            executor=RayExecutor(address, cpus_per_trial=THREADS, max_retries=2),
        )
    killer.check()
    assert not ray.is_initialized()  # disconnected; the cluster stays up
    worker_logs = "".join(p.read_text(errors="replace") for p in temp.glob("session_*/logs/worker-*.out"))
    assert "lenet5: resuming after epoch" in worker_logs  # the retry continued from the checkpoint
    assert run.status()["state"] == "complete" and run.verify() == []
    assert_same_trials(reference, run)  # bit-identical to the run that was never interrupted
    listening = watch.listening | driver.listening
    assert watch.listening and loopback_only(listening), listening


@pytest.mark.slow
def test_a_trial_that_raises_is_recorded_failed_and_its_sibling_completes(tmp_path, cluster, monkeypatch):
    address, _, _ = cluster
    spec = spec_file(tmp_path, FAILING)
    lines: list[str] = []
    pythonpath = os.pathsep.join([str(TESTS), str(REPO)])  # workers import test_ray:Exploding
    monkeypatch.chdir(tmp_path)  # a relative runs dir: the workers' working directory is another one
    run = run_experiment(
        spec,
        Path("runs"),
        "failing",
        log=lines.append,
        executor=RayExecutor(address, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}),
    )
    assert run.status()["state"] == "partial" and run.status()["failed_trials"] == ["001-exploding"]
    assert [p for p in run.verify() if not p.startswith("run state is 'partial'")] == []
    assert run.trial_status("000-mlp") == "complete"
    failed = run.trial("001-exploding")
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: exploded on purpose"
    assert "Traceback" in failed["traceback"] and "RuntimeError: exploded on purpose" in failed["traceback"]
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert any(line.startswith("trial 001-exploding (exploding): failed [") for line in trial_lines)
    assert trial_lines[-1].endswith("[1 done, 0 left, 1 failed]")
    assert any("1 of 2 trial(s) failed: 001-exploding" in line for line in lines)


@pytest.mark.slow
def test_a_worker_killed_more_often_than_max_retries_fails_only_its_trial(tmp_path, cluster):
    address, _, watch = cluster
    spec = spec_file(tmp_path, LONG)
    lines: list[str] = []
    killer = WorkerKiller(watch.root, tmp_path / "runs" / "lost", "000-lenet5")
    with pytest.raises(RunFailedError, match="every trial failed"):  # its only trial: nothing finished
        run_experiment(
            spec,
            tmp_path / "runs",
            "lost",
            log=lines.append,
            executor=RayExecutor(address, cpus_per_trial=THREADS, max_retries=0),
        )
    killer.check()
    run = ArchiveReader(tmp_path / "runs" / "lost")
    assert run.status()["state"] == "failed" and (run.path / "manifest.json").exists()
    trial = run.trial("000-lenet5")
    assert trial["status"] == "failed" and "Ray gave up after 0 retries" in trial["error"]
    assert "trial 000-lenet5 (lenet5): failed [0 done, 0 left, 1 failed]" in lines


@pytest.mark.slow
def test_a_worker_that_cannot_build_the_model_stops_the_sweep_with_the_reason(tmp_path, cluster, monkeypatch):
    address, _, _ = cluster
    spec = spec_file(tmp_path, FAILING)
    monkeypatch.chdir(tmp_path)  # Ray puts the driver's working directory on the workers' sys.path
    no_tests = RayExecutor(address, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # so no test_ray there
    with pytest.raises(ModelError, match=r"trial 001-exploding \(Ray worker\): .*cannot import module 'test_ray'"):
        run_experiment(spec, tmp_path / "runs", "unimportable", log=lambda line: None, executor=no_tests)
    assert ArchiveReader(tmp_path / "runs" / "unimportable").status()["state"] == "failed"
    assert not ray.is_initialized()


@pytest.mark.slow
def test_without_ray_the_executor_says_how_to_install_it():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import reportgen.run.ray_executor as r\n"  # importing works without Ray …
        "try:\n    r.RayExecutor()\nexcept r.ReportgenError as e:\n    print(e)"
    )  # … using it does not
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "Ray is not installed: pip install .[ray]", out


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cpus_per_trial": 0}, "cpus_per_trial"),
        ({"max_retries": -1}, "max_retries"),
        ({"cpus_per_trial": 3, "num_cpus": 2}, "no trial could ever be scheduled"),
    ],
)
def test_impossible_settings_are_refused_before_anything_runs(kwargs, message):
    with pytest.raises(RayExecutorError, match=message):
        RayExecutor(**kwargs)
