"""Issue 32, item 3: nothing downloads. Zoo models are built untrained, their backbones too, with the network cut
off; an argument that would fetch weights is refused in one line before torch (or the zoo) is imported.

The network is cut inside the subprocess: a sitecustomize on its PYTHONPATH makes every socket connection and
name lookup fail and writes each attempt to a log, so an attempt is seen even where the caller swallows the
error. TORCH_HOME points at an empty folder, so weights cached by an earlier run cannot hide a download.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_NETWORK = """import os
import socket

_LOG = os.environ["NETWORK_LOG"]


def _refused(*args, **kwargs):
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{args}\\n")
    raise OSError("network disabled by the test")


socket.socket.connect = _refused
socket.socket.connect_ex = _refused
socket.getaddrinfo = _refused
"""
PROBE = """import sys
from reportgen.cli import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
sys.exit(code)
"""


def _offline(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`python argv…` with the network cut; returns the process and the log of connection attempts."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_NETWORK, "utf-8")
    log = tmp_path / "network.log"
    env = os.environ | {"PYTHONPATH": str(site), "NETWORK_LOG": str(log), "TORCH_HOME": str(tmp_path / "torch")}
    done = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return done, log


def test_the_network_cut_sees_a_download_attempt(tmp_path: Path):
    """The guard itself: without it, the tests below could pass while a download was tried."""
    done, log = _offline(
        tmp_path, "-c", "import urllib.request; urllib.request.urlopen('https://download.pytorch.org')"
    )
    assert done.returncode != 0
    assert "network disabled by the test" in done.stderr
    assert log.read_text("utf-8").strip()


@pytest.mark.slow
@pytest.mark.parametrize(
    "reference",
    [
        # min_size/max_size: the detector's own transform would resize 64x64 to 800x800 (75 s of forwards on 2
        # cores); the builder and its backbone default are the same
        "torchvision:fasterrcnn_resnet50_fpn?min_size=64&max_size=64",
        "torchvision:lraspp_mobilenet_v3_large",
    ],
)
def test_a_model_whose_backbone_defaults_to_imagenet_weights_is_audited_offline(tmp_path: Path, reference: str):
    done, log = _offline(tmp_path, "-m", "reportgen", "params", reference, "--input", "3x64x64")
    assert not log.exists(), f"connection attempted: {log.read_text('utf-8')}"
    assert done.returncode == 0, done.stderr
    assert "torchinfo total:" in done.stdout and "total MACs per image:" in done.stdout  # audited to the end
    assert not (tmp_path / "torch").exists()  # nothing was cached either


@pytest.mark.parametrize(
    "reference, key",
    [
        ("torchvision:fasterrcnn_resnet50_fpn?weights_backbone=DEFAULT", "weights_backbone"),
        ("torchvision:lraspp_mobilenet_v3_large?weights=DEFAULT", "weights"),
        ("torchvision:resnet18?pretrained=true", "pretrained"),
        ("torchvision:fasterrcnn_resnet50_fpn?pretrained_backbone=true", "pretrained_backbone"),
        ("timm:resnet18?pretrained=true", "pretrained"),
        ('timm:resnet18?checkpoint_path="resnet18.pth"', "checkpoint_path"),
        ('timm:resnet18?pretrained_cfg_overlay={"file":"resnet18.pth"}', "pretrained_cfg_overlay"),
    ],
)
def test_an_argument_that_would_fetch_weights_is_one_line_before_torch_loads(tmp_path: Path, reference, key):
    done, log = _offline(tmp_path, "-c", PROBE, "params", reference, "--input", "3x64x64")
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error == (
        f"reportgen: error: model {reference.split('?')[0]}: {key!r} is not accepted — zoo models are built "
        "untrained (weights are never downloaded); drop it"
    )
    assert probe == "torch not imported"
    assert not log.exists()


def test_run_refuses_backbone_weights_before_anything_is_created(tmp_path: Path):
    reference = "torchvision:lraspp_mobilenet_v3_large?weights_backbone=DEFAULT"
    done, log = _offline(tmp_path, "-c", PROBE, "run", "--models", reference, "--epochs", "1", "--no-pdf")
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert "'weights_backbone' is not accepted" in error
    assert probe == "torch not imported"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()
    assert not log.exists()


def test_false_or_null_weights_ask_for_nothing_and_are_accepted():
    """`pretrained=false` or `weights_backbone=null` asks for what reportgen does anyway: no refusal."""
    from reportgen.models.registry import parse_model_ref
    from reportgen.models.sources import check_reference

    check_reference(parse_model_ref("timm:resnet18?pretrained=false&checkpoint_path=null"))
    check_reference(parse_model_ref("torchvision:fasterrcnn_resnet50_fpn?weights_backbone=null&weights=null"))
