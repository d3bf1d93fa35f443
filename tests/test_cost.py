"""Issue #16: cost beside accuracy — MACs per layer worked out by hand here (counted from the ops that run,
issue #26), cross-checked against torch's FlopCounterMode and torchinfo; latency measured for shape and sanity only (no timed assertions); the
`--expect-macs` claim through the real CLI; the cost table and scatter in a real report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchinfo
from conftest import LOCAL_RUN, write_idx_dataset
from torch import nn

from reportgen.cli import main
from reportgen.errors import ModelError
from reportgen.measure.cost import measure_cost, measure_latency
from reportgen.measure.mac_text import cross_check_text, format_macs
from reportgen.measure.macs import check_macs_claim, count_macs, macs_claim_note
from reportgen.models.registry import create_model, parse_model_ref

# LeNet-5 on 1×28×28 (padding 2): conv1 28·28·6 outputs × 5·5·1; conv2 10·10·16 × 5·5·6; then 400·120, 120·84, 84·10
LENET_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 25 * 6 + 400 * 120 + 120 * 84 + 84 * 10
LENET_BIAS_ADDS = 28 * 28 * 6 + 10 * 10 * 16 + 120 + 84 + 10
MLP_MACS = 784 * 64 + 64 * 10  # the built-in mlp: 784 → 64 → 10
MATCHED_MLP_MACS = 784 * 75 + 75 * 32 + 32 * 10  # mlp_lenet_sized: 61,637 parameters against LeNet-5's 61,706


def torchinfo_mult_adds(model: nn.Module, shape: tuple[int, ...]) -> int:
    return int(torchinfo.summary(model, input_size=(1, *shape), verbose=0).total_mult_adds)


def audit(model: nn.Module, shape: tuple[int, ...]):
    return count_macs(model, shape, torchinfo_mult_adds(model, shape))


@pytest.mark.parametrize(
    "reference, expected, bias_adds",
    [
        ("lenet5", LENET_MACS, LENET_BIAS_ADDS),
        ("mlp", MLP_MACS, 64 + 10),
        ("mlp_lenet_sized", MATCHED_MLP_MACS, 75 + 32 + 10),
    ],
)
def test_builtin_models_have_the_hand_counted_macs(reference, expected, bias_adds):
    result = count_macs(create_model(parse_model_ref(reference)), (1, 28, 28))  # asks torchinfo itself
    assert result.total == expected and result.bias_adds == bias_adds
    assert result.flop_counter_flops == 2 * expected and result.matches_flop_counter
    assert result.torchinfo_mult_adds == expected + bias_adds and result.matches_torchinfo


def test_lenet_does_over_six_times_the_work_of_its_parameter_matched_mlp():
    """The issue's point, on the built-in models themselves: equal parameters, not equal work."""
    lenet, mlp = (create_model(parse_model_ref(name)) for name in ("lenet5", "mlp_lenet_sized"))
    lenet_parameters, mlp_parameters = (sum(p.numel() for p in model.parameters()) for model in (lenet, mlp))
    assert abs(lenet_parameters - mlp_parameters) / lenet_parameters < 0.002  # within 0.2%: 61,706 and 61,637
    lenet_macs, mlp_macs = (count_macs(model, (1, 28, 28)).total for model in (lenet, mlp))
    assert lenet_macs > 6 * mlp_macs  # 416,520 against 61,520


def test_lenet_formulas_show_their_working_and_flop_counter_agrees_per_layer():
    result = audit(create_model(parse_model_ref("lenet5")), (1, 28, 28))
    layers = {layer.name: layer for layer in result.layers}
    assert layers["features.0"].formula == "28·28·6·5·5·1 = 117,600"
    assert layers["features.3"].formula == "10·10·16·5·5·6 = 240,000"
    assert layers["classifier.1"].formula == "400·120 = 48,000"
    assert layers["features.2"].macs == 0 and layers["features.2"].note == "comparisons, no multiply-adds"
    assert layers["features.1"].note == "elementwise activation"  # listed, not silently dropped
    assert layers["features.0"].ops == {"convolution": 117_600} and layers["classifier.1"].ops == {"addmm": 48_000}
    # it compares each layer as well as each op: every MAC seen, none disagreeing, nothing left unchecked
    check = result.flop_counter
    assert check.checked_macs == LENET_MACS and not check.disagree and not check.not_checked


def test_a_depthwise_and_grouped_convolution():
    model = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),  # depthwise: 16·16·8 outputs × 3·3·1
        nn.Conv2d(8, 16, 1, groups=2),
    )  # grouped 1×1: 16·16·16 outputs × 1·1·(8/2)
    result = audit(model, (8, 16, 16))
    assert [layer.macs for layer in result.layers] == [16 * 16 * 8 * 9, 16 * 16 * 16 * 4]
    assert [layer.formula for layer in result.layers] == ["16·16·8·3·3·8/8 = 18,432", "16·16·16·1·1·8/2 = 16,384"]
    assert result.bias_adds == 16 * 16 * 16
    assert result.matches_flop_counter and result.matches_torchinfo


def test_a_transposed_convolution_counts_per_input_element():
    model = nn.ConvTranspose2d(4, 6, kernel_size=3, stride=2)  # 5·5 inputs × 4 channels × 3·3 × 6; output 11·11
    result = audit(model, (4, 5, 5))
    assert result.total == 5 * 5 * 4 * 9 * 6 and result.layers[0].formula == "5·5·4·3·3·6 = 5,400"
    assert result.matches_flop_counter
    # torchinfo's rule charges every weight and bias at each of the 11·11 output positions: not a check of the work
    assert result.torchinfo_mult_adds == (4 * 6 * 9 + 6) * 11 * 11 and result.torchinfo.checked_macs == 0
    assert cross_check_text(result)[1] == (
        "26,862, not checked: (root) (ConvTranspose2d, 5,400 MACs): its rule charges every weight at every output "
        "position"
    )


def test_batchnorm_in_eval_is_one_multiply_add_per_element():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    model.train()  # counted as at inference, whatever mode it arrives in
    result = audit(model, (1, 28, 28))
    conv, batchnorm, linear = 26 * 26 * 4 * 9, 26 * 26 * 4, 4 * 26 * 26 * 10
    assert result.layers[1].formula == "26·26·4 = 2,704" and result.total == conv + batchnorm + linear
    assert result.batchnorm_macs == batchnorm
    # neither check can see BatchNorm's work: both say so for that layer, and confirm only the rest
    assert result.flop_counter_flops == 2 * (conv + linear) and result.flop_counter.checked_macs == conv + linear
    assert result.torchinfo_mult_adds == conv + 26 * 26 * 4 + linear + 10 + 8  # γ, β once: its rule, not work
    assert result.torchinfo.checked_macs == conv + linear and result.matches_torchinfo
    flop_text, torchinfo_text = cross_check_text(result)
    assert "✓" in flop_text and flop_text.endswith(
        "not checked: 1 (BatchNorm2d, 2,704 MACs): no formula for aten.native_batch_norm"
    )
    assert torchinfo_text.endswith(
        "not checked: 1 (BatchNorm2d, 2,704 MACs): its rule counts BatchNorm's parameters, not its elements"
    )
    assert check_macs_claim(result, result.torchinfo_mult_adds).endswith(
        "(that is torchinfo's mult-adds, counted by its own rule)"
    )
    assert model.training and model[1].training


def test_a_matmul_outside_any_layer_is_its_own_row():
    class Projection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(10, 10)
            self.register_buffer("extra", torch.ones(10, 10))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc(x) @ self.extra, x  # 100 MACs in forward itself; a tuple output is fine

    result = count_macs(Projection(), (10,))
    assert [(layer.name, layer.forward, layer.macs) for layer in result.layers] == [("fc", False, 100), ("", True, 100)]
    assert result.total == 200 and result.flop_counter_flops == 2 * 200 and result.matches_flop_counter
    assert "(root) (forward)  Projection  mm 1·10·10 = 100" in format_macs(result)


def test_a_layer_doing_more_than_its_formula_is_counted_and_the_difference_is_a_finding():
    class TwiceLinear(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(super().forward(x))  # two products; the Linear formula charges one

    result = count_macs(nn.Sequential(TwiceLinear(6, 6, bias=False)), (6,))
    assert result.total == 72 and result.matches_flop_counter
    assert [layer.formula_macs for layer in result.findings] == [36]
    assert "finding: 0 (TwiceLinear): its layer formula 6·6 gives 36; the ops that ran do 72" in format_macs(result)


def test_a_layer_with_a_tuple_output_is_counted():
    model = nn.Sequential(nn.LSTM(11, 5, batch_first=True))  # returns (output, (h, c))
    result = count_macs(model, (7, 11))
    assert [(layer.type, layer.macs) for layer in result.layers] == [("LSTM", 7 * (20 * 11 + 20 * 5))]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_is_refused_in_one_line():
    with pytest.raises(ModelError, match="TorchScript modules cannot be audited .*pass the nn.Module before"):
        count_macs(torch.jit.script(nn.Linear(4, 2)), (4,))


def test_latency_has_the_promised_shape():
    model = create_model(parse_model_ref("mlp"))
    threads = torch.get_num_threads()
    latencies = measure_latency(model, (1, 28, 28), budget_s=0.05)
    assert [x.batch_size for x in latencies] == [1, 256]
    for x in latencies:
        assert 0 < x.min_ms <= x.median_ms <= x.max_ms and 0 <= x.iqr_ms <= x.max_ms - x.min_ms
        assert 3 <= x.repeats <= 30
        assert x.images_per_second == pytest.approx(x.batch_size / (x.median_ms / 1000))
    assert torch.get_num_threads() == threads and model.training  # settings restored


def test_model_size_is_the_saved_state_dict():
    cost = measure_cost(create_model(parse_model_ref("lenet5")), (1, 28, 28))
    assert cost.parameter_bytes == 61_706 * 4
    assert 61_706 * 4 < cost.state_dict_bytes < 61_706 * 4 + 20_000  # fp32 tensors plus torch.save's framing
    assert cost.device == "cpu" and cost.threads == 1
    data = json.loads(json.dumps(cost.to_dict()))  # archived as JSON
    assert data["macs"]["total"] == LENET_MACS and [x["batch_size"] for x in data["latency"]] == [1, 256]


def test_a_wrong_macs_claim_says_what_was_probably_counted():
    result = audit(create_model(parse_model_ref("lenet5")), (1, 28, 28))
    assert check_macs_claim(result, LENET_MACS) is None
    assert check_macs_claim(result, 2 * LENET_MACS).endswith("(that is FLOPs: 2 × MACs)")
    assert check_macs_claim(result, LENET_MACS + LENET_BIAS_ADDS).endswith(
        "(that is ours + the bias additions, as torchinfo counts)"
    )
    assert check_macs_claim(result, 400_000) == "claimed 400,000 MACs, counted 416,520 (+16,520 difference)"
    assert macs_claim_note(result, LENET_MACS) is None  # LeNet-5 has no BatchNorm: nothing to explain


@pytest.mark.slow
@pytest.mark.parametrize("claim, code", [("416520", 0), ("833040", 1)])
def test_expect_macs_through_the_installed_cli(claim, code):
    reportgen = Path(sys.executable).with_name("reportgen")  # the console script pip installed beside python
    result = subprocess.run(
        [str(reportgen), "params", "lenet5", "--expect-macs", claim], capture_output=True, text=True, check=False
    )
    assert result.returncode == code, result.stderr
    assert "total MACs per image: 416,520 (= 833,040 FLOPs)" in result.stdout
    expected_err = (
        ""
        if code == 0
        else ("lenet5: claimed 833,040 MACs, counted 416,520 (-416,520 difference) (that is FLOPs: 2 × MACs)\n")
    )
    assert result.stderr == expected_err


@pytest.mark.slow
def test_the_report_sets_cost_beside_accuracy(tmp_path):
    write_idx_dataset(tmp_path / "idx", n_train=200, n_test=100)
    code = main(
        [
            "run",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "idx"),
            "--models",
            "lenet5,mlp",
            "--epochs",
            "1",
            *LOCAL_RUN,
            "--run-id",
            "cost",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--output-dir",
            str(tmp_path / "output"),
        ]
    )
    assert code == 0
    report = tmp_path / "output" / "cost"
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    assert summary["cost"]["lenet5"]["macs"]["total"] == LENET_MACS
    assert summary["cost"]["mlp"]["macs"]["total"] == MLP_MACS
    text = re.sub(r"<[^>]+>", "", (report / "report.html").read_text("utf-8"))  # the words, whatever the markup
    assert "416,520" in text and "28·28·6·5·5·1 = 117,600" in text
    assert (report / "figures" / "cost.svg").is_file()
    # each model trained once: one table of accuracy and cost, parameters then MACs, no second cost table
    assert "Cost beside accuracy" not in text
    assert re.search(r"\| lenet5 \|( [^|]+ \|){4} 61,706 \| 416,520 \|", (report / "report.md").read_text("utf-8"))


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ("csv", '117600,"28·28·6·5·5·1 = 117,600"'),
        ("markdown", "| `features.0` | Conv2d | 28·28·6·5·5·1 = 117,600 | 117,600 |"),
        ("json", '"total": 416520'),
    ],
)
def test_params_outputs_carry_the_macs_per_layer(cli, fmt, expected):
    code, out, err = cli("params", "lenet5", "--format", fmt)
    assert code == 0, err
    assert expected in out
    if fmt == "json":
        assert json.loads(out)["cost"]["macs"]["layers"][0]["macs"] == 117_600


def test_both_wrong_claims_are_shown(cli):
    code, _out, err = cli("params", "lenet5", "--expect", "61000", "--expect-macs", "400000")
    assert code == 1
    assert err == (
        "lenet5: expected 61,000, counted 61,706: difference +706; "
        "claimed 400,000 MACs, counted 416,520 (+16,520 difference)\n"
    )


def test_counting_macs_leaves_torch_dynamo_unimported():
    """Issue #38: torch's dynamo-skipping wrapper on dispatch modes imports torch._dynamo (2 s on two cores,
    before the first trial starts); the count keeps it off, and FlopCounterMode still agrees."""
    code = (
        "import sys\n"
        "from reportgen.measure.macs import count_macs\n"
        "from reportgen.models.registry import create_model, parse_model_ref\n"
        "audit = count_macs(create_model(parse_model_ref('lenet5')), (1, 28, 28))\n"
        "print(audit.total, audit.matches_flop_counter, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(LENET_MACS), "True", "False"]
