"""Parameter-count audit: exact counts, per-layer formulas, torchinfo agreement, claims, formats."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch
from conftest import one_error_line
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.audit_text import format_audit
from reportgen.measure.params import (
    LayerAudit,
    ModelAudit,
    audit_model,
    check_claim,
    parse_input_shape,
)
from reportgen.measure.widths import match_mlp
from reportgen.messages import english
from reportgen.models.registry import create_model

try:
    from tests.fixtures_nets import AllLayersNet, BrokenViewNet, FrozenNet, TiedNet, VariantsNet
except ImportError:  # tests/ itself on sys.path (pytest's default rootdir-less import)
    from fixtures_nets import AllLayersNet, BrokenViewNet, FrozenNet, TiedNet, VariantsNet


def audit(name: str, shape: tuple[int, ...] = (1, 28, 28)) -> ModelAudit:
    return audit_model(create_model(name), shape, name=name)


def direct_numel(model: nn.Module, layer: LayerAudit) -> int:
    module = model.get_submodule(layer.name)
    return sum(p.numel() for p in module.parameters(recurse=False))


def formula_value(formula: str) -> int:
    match = re.search(r"= ([\d,]+)", formula)
    assert match, formula
    return int(match.group(1).replace(",", ""))


# --------------------------------------------------------------------------- registered models


@pytest.mark.parametrize(
    ("name", "total", "without_bias"),
    [
        ("lenet5", 61_706, 61_470),
        ("lenet5_256", 44_426, 44_190),
        ("lenet5_c5", 61_706, None),
        ("mlp", 50_890, None),
        ("mlp_lenet_sized", 61_637, None),
        ("mlp_deep", 61_720, None),
        ("lenet5_regularized", 62_158, None),
        ("cnn_1x1", None, 60_540),
    ],
)
def test_registered_model_counts(name: str, total: int | None, without_bias: int | None) -> None:
    model = create_model(name)
    result = audit_model(model, name=name)
    if total is not None:
        assert result.total == total
    if without_bias is not None:
        assert result.without_bias == without_bias
    assert result.total == sum(p.numel() for p in model.parameters())
    assert result.without_bias + result.bias == result.total
    assert result.trainable == result.total and result.frozen == 0
    assert result.matches_torchinfo and result.torchinfo_total == result.total


def test_batchnorm_params_and_buffers() -> None:
    result = audit("lenet5_regularized")
    assert result.batchnorm_params == 452
    assert result.total - result.batchnorm_params == 61_706
    bn = [layer for layer in result.layers if layer.type == "BatchNorm2d"][1]
    assert (bn.weights, bn.bias, bn.output_shape) == (16, 16, [2, 16, 10, 10])
    assert str(bn.formula) == "2·16 = 32 (+32 running stats, not trainable)"
    assert bn.buffers == 33  # running mean + var + num_batches_tracked
    assert result.buffers == sum(b.numel() for b in create_model("lenet5_regularized").buffers())
    assert audit("lenet5").batchnorm_params == 0


def test_lenet5_layer_formulas_in_forward_order() -> None:
    model = create_model("lenet5")
    result = audit_model(model, name="lenet5")
    with_params = [(layer.type, str(layer.formula)) for layer in result.layers if layer.formula]
    assert with_params == [
        ("Conv2d", "(5·5·1 + 1)·6 = 156"),
        ("Conv2d", "(5·5·6 + 1)·16 = 2,416"),
        ("Linear", "(400 + 1)·120 = 48,120"),
        ("Linear", "(120 + 1)·84 = 10,164"),
        ("Linear", "(84 + 1)·10 = 850"),
    ]
    leaves = [
        (name, type(m).__name__)
        for name, m in model.named_modules()
        if not any(m.children()) and not isinstance(m, nn.Identity)
    ]
    assert [(layer.name, layer.type) for layer in result.layers] == leaves  # no containers, forward order
    assert result.layers[0].output_shape == [2, 6, 28, 28]
    pool = next(layer for layer in result.layers if layer.type == "MaxPool2d")
    assert (pool.output_shape, str(pool.formula), pool.weights, pool.bias) == ([2, 6, 14, 14], "", 0, 0)
    fc1 = next(layer for layer in result.layers if layer.type == "Linear")
    assert (fc1.weights, fc1.bias, fc1.output_shape) == (48_000, 120, [2, 120])


def test_identity_placeholders_left_out() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Identity(), nn.ReLU())
    result = audit_model(model, (4,))
    assert [(layer.name, layer.type) for layer in result.layers] == [("0", "Linear"), ("2", "ReLU")]


# --------------------------------------------------------------------------- every layer type


def test_every_layer_type_counts_its_own_parameters() -> None:
    model = AllLayersNet()
    result = audit_model(model, (4, 8, 8))
    types = {layer.type for layer in result.layers}
    assert {
        "Conv2d",
        "Conv1d",
        "Conv3d",
        "ConvTranspose2d",
        "Bilinear",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "LayerNorm",
        "GroupNorm",
        "InstanceNorm2d",
        "Embedding",
        "PReLU",
        "LSTM",
        "GRU",
        "RNN",
        "ScaleShift",
    } <= types
    for layer in result.layers:
        assert layer.params == direct_numel(model, layer), layer
        assert layer.output_shape is not None, layer
        if layer.type == "ScaleShift":
            assert str(layer.formula).startswith("numel = 10")
        else:
            assert formula_value(str(layer.formula)) == layer.params, layer
    assert result.total == sum(p.numel() for p in model.parameters())
    assert result.buffers == sum(b.numel() for b in model.buffers())
    assert result.batchnorm_params == 16 + 4 + 12  # InstanceNorm / GroupNorm are not BatchNorm
    assert result.matches_torchinfo
    by_name = {layer.name: layer for layer in result.layers}
    assert str(by_name["conv"].formula) == "(3·3·4/2 + 1)·8 = 152"
    assert str(by_name["deconv"].formula) == "2·2·8·4/2 + 4 = 68"
    assert str(by_name["conv1d"].formula) == "3·2·6 = 36"
    assert str(by_name["inorm"].formula) == "2·8 = 16 (+16 running stats, not trainable)"
    assert str(by_name["lstm"].formula) == "2·4·(6·5 + 5·5 + 2·5) + 2·4·(10·5 + 5·5 + 2·5) = 1,200"
    assert str(by_name["gru"].formula) == "3·(10·7 + 7·7 + 2·7) = 399"
    assert str(by_name["rnn"].formula) == "7·3 + 3·3 = 30"
    assert by_name["lstm"].bias == 160 and by_name["rnn"].bias == 0
    assert str(by_name["bilinear"].formula) == "(12·12 + 1)·5 = 725"
    assert str(by_name["embed"].formula) == "10·3 = 30"
    assert str(by_name["prelu"].formula) == "8 slopes (one per channel) = 8"


def test_uncalled_variants_are_listed_last_and_counted() -> None:
    model = VariantsNet()
    result = audit_model(model, (3,))
    assert result.layers[0].name == "used" and result.layers[0].output_shape == [2, 2]
    assert all(layer.output_shape is None for layer in result.layers[1:])
    for layer in result.layers:
        assert layer.params == direct_numel(model, layer), layer
        if layer.params:
            assert formula_value(str(layer.formula)) == layer.params, layer
    assert result.total == sum(p.numel() for p in model.parameters()) == result.torchinfo_total
    by_name = {layer.name: layer for layer in result.layers}
    assert str(by_name["lstm_proj"].formula).endswith("= 516")
    assert str(by_name["depthwise"].formula) == "(3·3·6/6 + 1)·6 = 60"  # dilation does not matter
    assert str(by_name["ln_nobias"].formula) == "(4·5) = 20"
    assert str(by_name["ln_plain"].formula) == ""
    assert str(by_name["bn_noaffine"].formula) == "no affine parameters (+10 running stats, not trainable)"
    assert by_name["bn_noaffine"].buffers == 11
    assert str(by_name["bn_nostats"].formula) == "2·5 = 10"
    assert str(by_name["prelu_one"].formula) == "1 shared slope = 1"


def test_tied_weights_counted_once_and_marked_shared() -> None:
    model = TiedNet()
    result = audit_model(model, (8,))
    embed, head = result.layers
    assert (embed.name, embed.weights, embed.shared) == ("embed", 1_600, False)
    assert (head.name, head.weights, head.bias, head.shared) == ("head", 0, 100, True)
    assert "shared with 'embed'" in str(head.formula)
    assert result.total == 1_700 == sum(p.numel() for p in model.parameters())
    # torchinfo counts the tied matrix in both leaf layers; the audit says so instead of agreeing
    assert result.torchinfo_total == 3_300 and not result.matches_torchinfo
    assert "3,300 ≠ ours, explained: torchinfo counts the 1,600 shared (tied) parameters" in format_audit(result)
    assert str(result.torchinfo_note).endswith("ours is right")


def test_frozen_parameters() -> None:
    result = audit_model(FrozenNet(), (4,))
    assert (result.total, result.trainable, result.frozen) == (58, 18, 40)
    backbone = result.layers[0]
    assert (backbone.frozen, backbone.trainable) == (40, 0) and str(backbone.formula).endswith("[frozen]")
    assert check_claim(result, expect=18) == (
        "expected 18, counted 58: frozen parameters 40 — did you count only trainable ones?"
    )


def test_audit_restores_modes_buffers_and_rng() -> None:
    model = create_model("lenet5_regularized")
    model.train()
    model.classifier.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    audit_model(model)
    assert model.training and model.features.training and not model.classifier.training
    assert not model.classifier[2].training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


# --------------------------------------------------------------------------- torchvision


@pytest.mark.slow  # torchinfo over three torchvision networks, up to 133 M parameters
@pytest.mark.parametrize(
    ("factory", "expected"),
    [("resnet18", 11_689_512), ("vgg11_bn", 132_868_840), ("mobilenet_v3_small", 2_542_856)],
)
def test_torchvision_models_agree_with_torchinfo(factory: str, expected: int) -> None:
    torchvision = pytest.importorskip("torchvision")
    model = getattr(torchvision.models, factory)(weights=None)
    result = audit_model(model, (3, 64, 64), name=factory)
    assert result.total == expected == sum(p.numel() for p in model.parameters())
    assert result.matches_torchinfo, (result.total, result.torchinfo_total)
    assert result.trainable == expected and result.frozen == 0
    assert all(layer.formula and not str(layer.formula).startswith("numel") for layer in result.layers if layer.params)
    assert result.batchnorm_params == sum(
        p.numel() for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()
    )


# --------------------------------------------------------------------------- input shapes and errors


def first_named(model: nn.Module, kind: type[nn.Module]) -> str:
    return next(name for name, m in model.named_modules() if isinstance(m, kind))


def test_wrong_input_shape_names_the_layer() -> None:
    model = create_model("lenet5")
    fc1 = first_named(model, nn.Linear)  # 'classifier.1'
    with pytest.raises(ModelError) as err:
        audit_model(model, (1, 32, 32), name="lenet5")
    message = str(err.value)
    assert message.startswith(f"model lenet5: forward fails at layer '{fc1}' (Linear) for input 1x32x32: ")
    assert "mat1 and mat2" in message and "\n" not in message


def test_failure_in_the_models_own_forward() -> None:
    with pytest.raises(ModelError, match=r"layer '\(root\)' \(BrokenViewNet\), after layer 'conv' \(Conv2d\)"):
        audit_model(BrokenViewNet(), (1, 8, 8))


def test_wrong_channel_count_names_first_conv() -> None:
    model = create_model("lenet5")
    conv1 = first_named(model, nn.Conv2d)
    # the grey model on RGB data is named with its first layer and the fix (issue 37: RGB images)
    with pytest.raises(
        ModelError, match=rf"first layer '{re.escape(conv1)}' is Conv2d\(1, 6, .*3x28x28.*in_channels=3"
    ):
        audit_model(model, (3, 28, 28), name="lenet5")


def test_parse_input_shape() -> None:
    assert parse_input_shape("1x28x28") == (1, 28, 28)
    assert parse_input_shape(" 3×32×32 ") == (3, 32, 32)
    assert parse_input_shape("784") == (784,)
    for bad in ("", "1x28x", "axb", "1x0x28", "-1x28x28"):
        with pytest.raises(ModelError, match="expected .*1x28x28") as err:
            parse_input_shape(bad)
        assert repr(bad) in str(err.value)


# --------------------------------------------------------------------------- claims


def test_check_claim_messages() -> None:
    lenet256 = audit("lenet5_256")
    assert check_claim(lenet256, expect=44_190) == (
        "expected 44,190, counted 44,426: bias terms 236 — did you leave out biases?"
    )
    assert check_claim(lenet256, expect=44_426) is None
    assert check_claim(lenet256, expect_no_bias=44_190) is None
    assert check_claim(lenet256, expect=44_426, expect_no_bias=44_190) is None
    assert check_claim(lenet256, expect_no_bias=44_426) == (
        "expected 44,426 without bias, counted 44,190 without bias (44,426 with bias)"
        " — that is the total with biases; did you include them?"
    )
    assert check_claim(lenet256, expect=44_000) == "expected 44,000, counted 44,426: difference +426"
    lenet = audit("lenet5")
    assert check_claim(lenet, expect=61_706, expect_no_bias=61_470) is None
    regularized = audit("lenet5_regularized")
    assert check_claim(regularized, expect=61_706) == (
        "expected 61,706, counted 62,158: BatchNorm adds 452 — did you count the model without BatchNorm?"
    )


# --------------------------------------------------------------------------- formats


def test_format_table() -> None:
    result = audit("lenet5")
    text = format_audit(result)
    header = text.splitlines()[2]
    for column in ("layer", "type", "output shape", "formula", "weights", "bias", "trainable", "buffers"):
        assert column in header
    assert "(400 + 1)·120 = 48,120" in text and "48,000" in text
    assert re.search(r"all parameters:\s+61,706", text)
    assert re.search(r"without bias:\s+61,470", text)
    assert re.search(r"torchinfo total:\s+61,706 ✓", text)
    for label in ("trainable:", "frozen:", "BatchNorm adds:", "buffers:"):
        assert label in text


def test_format_csv_json_markdown() -> None:
    result = audit("lenet5_regularized")
    data = json.loads(format_audit(result, "json"))
    assert data["total"] == 62_158 and data["batchnorm_params"] == 452 and data["input_shape"] == [1, 28, 28]
    assert len(data["layers"]) == len(result.layers) and data["layers"][0]["formula"] == "(5·5·1 + 1)·6 = 156"
    assert data == english(result.to_dict())  # the archive's messages, in English

    rows = list(csv.reader(io.StringIO(format_audit(result, "csv"))))
    assert rows[0][:8] == ["layer", "type", "output_shape", "formula", "weights", "bias", "trainable", "frozen"]
    assert len(rows) == 1 + len(result.layers)
    assert rows[1][:5] == [result.layers[0].name, "Conv2d", "2x6x28x28", "(5·5·1 + 1)·6 = 156", "150"]
    assert sum(int(r[4]) + int(r[5]) for r in rows[1:]) == 62_158

    markdown = format_audit(result, "markdown").splitlines()
    table = [line for line in markdown if line.startswith("|")]
    assert table[0].startswith("| layer | type |") and re.fullmatch(r"\|(-+:?\|)+", table[1])
    assert len(table) == 2 + len(result.layers)
    assert any("48,120" in line for line in table)
    assert "- torchinfo total: 62,158 ✓" in markdown


def test_unknown_format_lists_valid_ones() -> None:
    with pytest.raises(ModelError, match="table, csv, json, markdown"):
        format_audit(audit("mlp"), "xml")


# --------------------------------------------------------------------------- MLP sizing


def test_match_mlp_lenet_sized() -> None:
    hidden, count = match_mlp(61_706)
    assert len(hidden) == 2 and hidden[0] >= hidden[1] >= 1
    assert abs(count - 61_706) / 61_706 < 0.005
    assert audit_model(create_model("mlp", hidden=hidden)).total == count


def test_match_mlp_other_depths() -> None:
    assert match_mlp(50_890, depth=1) == ([64], 50_890)
    hidden, count = match_mlp(61_706, depth=3)
    assert len(hidden) == 3 and hidden == sorted(hidden, reverse=True)
    assert abs(count - 61_706) / 61_706 < 0.005
    assert audit_model(create_model("mlp", hidden=hidden)).total == count
    with pytest.raises(ModelError):
        match_mlp(1000, depth=0)


# --------------------------------------------------------------------------- when torchinfo disagrees


class TiedLinears(nn.Module):
    """Two Linear(10, 10) sharing one weight Parameter: 100 weights + 2·10 biases = 120 unique parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.encode, self.decode = nn.Linear(10, 10), nn.Linear(10, 10)
        self.decode.weight = self.encode.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ScaledTiedLinears(TiedLinears):
    """TiedLinears behind a root-level scale vector (10): torchinfo 1.8 drops the root's parameter here
    (100 + 10 + 100 + 10 = 220, not 130 + 100), a difference no tying or pruning explains."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * self.scale)


class PairOutput(nn.Module):
    """forward returns a tuple (logits, features): 6·4 + 4 = 28 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


def pruned_mlp() -> nn.Sequential:
    """(20 + 1)·10 + (10 + 1)·5 = 265 stored; half of the first 200 weights masked to zero."""
    from torch.nn.utils import prune

    model = nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 5))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    return model


def test_tied_linears_torchinfo_counts_the_shared_weight_twice() -> None:
    result = audit_model(TiedLinears(), (10,))
    assert result.total == 120 and result.torchinfo_total == 220 and not result.matches_torchinfo
    assert str(result.torchinfo_note) == (
        "torchinfo counts the 100 shared (tied) parameters once per layer that uses "
        "them; the model stores and trains 120: ours is right"
    )
    assert f"torchinfo total: 220 ≠ ours, explained: {result.torchinfo_note}" in format_audit(result)
    assert f"- torchinfo total: 220 ≠ ours, explained: {result.torchinfo_note}" in format_audit(result, "markdown")
    assert json.loads(format_audit(result, "json"))["torchinfo_note"] == str(result.torchinfo_note)


def test_an_unexplained_torchinfo_difference_stays_a_mismatch() -> None:
    result = audit_model(ScaledTiedLinears(), (10,))
    shared = 100
    assert result.total == 130 and result.torchinfo_total == 220 != result.total + shared
    assert str(result.torchinfo_note) == "" and not result.matches_torchinfo
    assert "torchinfo total: 220 ✗ MISMATCH (ours 130)" in format_audit(result)


def test_pruned_model_states_stored_and_remaining_parameters() -> None:
    result = audit_model(pruned_mlp(), (20,))
    assert result.total == 210 + 55 and result.pruned == 100 and result.layers[0].pruned == 100
    assert str(result.layers[0].formula) == "(20 + 1)·10 = 210 [100 pruned]"
    assert result.torchinfo_total == result.total - 100 and "both are right" in str(result.torchinfo_note)
    assert "left after pruning: 165 nonzero (265 stored, 100 of the *_orig entries masked to zero)" in format_audit(
        result
    )
    rows = list(csv.DictReader(io.StringIO(format_audit(result, "csv"))))
    assert [row["pruned"] for row in rows] == ["100", "0", "0"]


@pytest.mark.parametrize(
    ("factory", "shape", "code", "expected"),
    [
        pytest.param(
            lambda: torch.jit.script(nn.Linear(4, 2)),
            "4",
            2,
            (
                "TorchScript modules cannot be audited (hooks are not supported on them): pass the nn.Module "
                "before torch.jit.script / torch.jit.trace"
            ),
            marks=pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning"),
        ),
        (PairOutput, "6", 0, "torchinfo total: 28 ✓"),
        (TiedLinears, "10", 0, "torchinfo total: 220 ≠ ours, explained: torchinfo counts the 100 shared"),
        (pruned_mlp, "20", 0, "left after pruning: 165 nonzero"),
        (ScaledTiedLinears, "10", 0, "torchinfo total: 220 ✗ MISMATCH (ours 130)"),
    ],
    ids=["torchscript", "tuple-output", "tied", "pruned", "unexplained"],
)
def test_awkward_models_through_reportgen_params(cli, monkeypatch, factory, shape, code, expected) -> None:
    from reportgen.models import registry

    monkeypatch.setitem(registry._REGISTRY, "awkward", factory)  # as if a user file registered it
    result = cli("params", "awkward", "--input", shape)
    assert result[0] == code, result
    if code:
        assert one_error_line(result[2]) == f"reportgen: error: {expected}"
    else:
        assert expected in result[1]
