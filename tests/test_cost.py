"""Issue #16: cost beside accuracy — MACs per layer worked out by hand here, cross-checked against torch's
FlopCounterMode and torchinfo; latency measured for shape and sanity only (no timed assertions); the
`--expect-macs` claim through the real CLI; the cost table and scatter in a real report.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchinfo
from conftest import write_idx_dataset
from torch import nn

from reportgen.cli import main
from reportgen.cost import count_macs, measure_cost, measure_latency
from reportgen.errors import ModelError
from reportgen.registry import create_model, parse_model_ref

# LeNet-5 on 1×28×28 (padding 2): conv1 28·28·6 outputs × 5·5·1; conv2 10·10·16 × 5·5·6; then 400·120, 120·84, 84·10
LENET_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 25 * 6 + 400 * 120 + 120 * 84 + 84 * 10
LENET_BIAS_ADDS = 28 * 28 * 6 + 10 * 10 * 16 + 120 + 84 + 10
MLP_MACS = 784 * 64 + 64 * 10  # the built-in mlp: 784 → 64 → 10


def torchinfo_mult_adds(model: nn.Module, shape: tuple[int, ...]) -> int:
    return int(torchinfo.summary(model, input_size=(1, *shape), verbose=0).total_mult_adds)


def audit(model: nn.Module, shape: tuple[int, ...]):
    return count_macs(model, shape, torchinfo_mult_adds(model, shape))


@pytest.mark.parametrize("reference, expected, bias_adds", [
    ("lenet5", LENET_MACS, LENET_BIAS_ADDS),
    ("mlp", MLP_MACS, 64 + 10),
])
def test_builtin_models_have_the_hand_counted_macs(reference, expected, bias_adds):
    result = audit(create_model(parse_model_ref(reference)), (1, 28, 28))
    assert result.total == expected and result.bias_adds == bias_adds
    assert result.flop_counter_flops == 2 * expected and result.matches_flop_counter
    assert result.torchinfo_mult_adds == expected + bias_adds and result.matches_torchinfo


def test_lenet_formulas_show_their_working():
    layers = {layer.name: layer for layer in audit(create_model(parse_model_ref("lenet5")), (1, 28, 28)).layers}
    assert layers["features.0"].formula == "28·28·6·5·5·1 = 117,600"
    assert layers["features.3"].formula == "10·10·16·5·5·6 = 240,000"
    assert layers["classifier.1"].formula == "400·120 = 48,000"
    assert layers["features.2"].macs == 0 and layers["features.2"].note == "comparisons, no multiply-adds"
    assert layers["features.1"].note == "elementwise activation"  # listed, not silently dropped


def test_a_depthwise_and_grouped_convolution():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),  # depthwise: 16·16·8 outputs × 3·3·1
                          nn.Conv2d(8, 16, 1, groups=2))  # grouped 1×1: 16·16·16 outputs × 1·1·(8/2)
    result = audit(model, (8, 16, 16))
    assert [layer.macs for layer in result.layers] == [16 * 16 * 8 * 9, 16 * 16 * 16 * 4]
    assert result.layers[0].formula == "16·16·8·3·3·8/8 = 18,432"
    assert result.bias_adds == 16 * 16 * 16
    assert result.matches_flop_counter and result.matches_torchinfo


def test_a_transposed_convolution_counts_per_input_element():
    model = nn.ConvTranspose2d(4, 6, kernel_size=3, stride=2, bias=False)  # 5·5 inputs × 4 channels × 3·3 × 6
    result = audit(model, (4, 5, 5))
    assert result.total == 5 * 5 * 4 * 9 * 6
    assert result.matches_flop_counter


def test_batchnorm_adds_no_macs_and_torchinfo_counts_its_parameters():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    result = audit(model, (1, 28, 28))
    assert result.total == 26 * 26 * 4 * 9 + 4 * 26 * 26 * 10
    batchnorm = result.layers[1]
    assert batchnorm.macs == 0 and "folds into the preceding layer" in batchnorm.note
    assert result.other_terms == 8  # torchinfo adds BatchNorm's 8 parameters to its mult-adds
    assert result.matches_torchinfo and result.matches_flop_counter


def test_a_matmul_outside_any_layer_shows_as_a_flop_counter_mismatch():
    class Projection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(10, 10)
            self.register_buffer("extra", torch.ones(10, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) @ self.extra  # 100 MACs no layer hook sees

    result = count_macs(Projection(), (10,))
    assert result.total == 100 and result.flop_counter_flops == 2 * 200 and not result.matches_flop_counter


def test_torchscript_is_refused_in_one_line():
    from reportgen.param_audit import audit_model

    scripted = torch.jit.script(nn.Linear(4, 2))
    for check in (lambda: count_macs(scripted, (4,)), lambda: audit_model(scripted, (4,))):
        with pytest.raises(ModelError, match="TorchScript modules cannot be audited"):
            check()


def test_latency_has_the_promised_shape():
    model = create_model(parse_model_ref("mlp"))
    threads = torch.get_num_threads()
    latencies = measure_latency(model, (1, 28, 28), budget_s=0.05)
    assert [x.batch_size for x in latencies] == [1, 256]
    for x in latencies:
        assert x.median_ms > 0 and x.iqr_ms >= 0 and x.repeats >= 3
        assert x.images_per_second == pytest.approx(x.batch_size / (x.median_ms / 1000))
    assert torch.get_num_threads() == threads and model.training  # settings restored


def test_model_size_is_the_saved_state_dict():
    cost = measure_cost(create_model(parse_model_ref("lenet5")), (1, 28, 28))
    assert cost.parameter_bytes == 61_706 * 4
    assert 61_706 * 4 < cost.state_dict_bytes < 61_706 * 4 + 20_000  # fp32 tensors plus torch.save's framing
    assert cost.device == "cpu" and cost.threads == 1


@pytest.mark.parametrize("claim, code, message", [
    ("416520", 0, ""),
    ("833040", 1, "(that is FLOPs: 2 × MACs)"),
    ("423038", 1, "(that is ours + the bias additions, as torchinfo counts)"),
    ("400000", 1, "claimed 400,000 MACs, counted 416,520 (+-16,520"),
])
def test_expect_macs_checks_a_claim_through_the_cli(claim, code, message):
    result = subprocess.run([sys.executable, "-m", "reportgen", "params", "lenet5", "--expect-macs", claim],
                            capture_output=True, text=True, check=False, env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == code, result.stderr
    assert "total MACs per image: 416,520 (= 833,040 FLOPs)" in result.stdout
    if message:
        assert message.replace("+-", "-") in result.stderr, result.stderr


def test_the_report_sets_cost_beside_accuracy(tmp_path):
    write_idx_dataset(tmp_path / "idx", n_train=200, n_test=100)
    code = main(["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "idx"), "--models", "lenet5,mlp",
                 "--epochs", "1", "--batch-size", "50", "--executor", "local", "--no-pdf", "--run-id", "cost",
                 "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "output")])
    assert code == 0
    report = tmp_path / "output" / "cost"
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    assert summary["cost"]["lenet5"]["macs"]["total"] == LENET_MACS
    assert summary["cost"]["mlp"]["macs"]["total"] == MLP_MACS
    html = (report / "report.html").read_text("utf-8")
    assert "Cost beside accuracy" in html and "<td>416,520</td>" in html and "28·28·6·5·5·1 = 117,600" in html
    assert (report / "figures" / "cost.svg").is_file()
    assert "| lenet5 | 61,706 | 416,520 |" in (report / "report.md").read_text("utf-8")


@pytest.mark.parametrize("fmt, expected", [
    ("csv", '117600,"28·28·6·5·5·1 = 117,600"'),
    ("markdown", "| `features.0` | Conv2d | 28·28·6·5·5·1 = 117,600 | 117,600 |"),
    ("json", '"total": 416520'),
])
def test_params_outputs_carry_the_macs_per_layer(cli, fmt, expected):
    code, out, err = cli("params", "lenet5", "--format", fmt)
    assert code == 0, err
    assert expected in out
    if fmt == "json":
        assert json.loads(out)["cost"]["macs"]["layers"][0]["macs"] == 117_600
