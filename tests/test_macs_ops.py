"""Issue #26: MACs counted from the ops a forward really runs — attention, RNNs, any leading dimensions, scripted
submodules, FrozenBatchNorm2d, one module under two names — each total worked out by hand here, and each
cross-check saying "not checked" (never ✓) for what it cannot see."""

from __future__ import annotations

import pytest
import torch
from fixtures_nets import (
    AliasNet,
    BrokenViewNet,
    CellLoop,
    FoldedRows,
    ScriptedPart,
    SelfAttention,
    SequenceFirst,
    ValueBranch,
)
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from reportgen.errors import ModelError
from reportgen.measure.mac_text import cross_check_text, format_macs
from reportgen.measure.macs import count_macs
from reportgen.measure.params import audit_model

# d_model 64, 4 heads of 16, 10 tokens: in-projection 10·64·(3·64), scores 4·10·10·16, weights·values 4·10·10·16,
# out-projection 10·64·64
ATTENTION = 10 * 64 * 192 + 2 * (4 * 10 * 10 * 16) + 10 * 64 * 64
FEED_FORWARD = 10 * 64 * 128 + 10 * 128 * 64  # linear1 and linear2 over the 10 tokens
# an LSTM has 4 gates: per step, input·W_ih (4·20 × in) and h·W_hh (4·20 × 20)
LSTM_2_LAYERS = 5 * (80 * 10 + 80 * 20) + 5 * (80 * 20 + 80 * 20)


def test_multihead_attention_counts_projections_and_both_attention_products():
    result = count_macs(SelfAttention(), (10, 64))
    assert ATTENTION == 176_640 and result.total == ATTENTION
    assert [(layer.name, layer.type, layer.macs) for layer in result.layers if layer.macs] == [
        ("attention", "MultiheadAttention", ATTENTION)
    ]
    assert result.matches_flop_counter and result.flop_counter.checked_macs == ATTENTION  # matmuls: it sees all


def test_a_transformer_encoder_layer_counts_all_it_computes():
    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
    result = count_macs(layer, (10, 64))
    assert ATTENTION + FEED_FORWARD == 340_480 and result.total == 340_480  # the issue measured 163,840
    by_name = {row.name: row.macs for row in result.layers if row.macs}
    assert by_name == {"self_attn": ATTENTION, "linear1": 10 * 64 * 128, "linear2": 10 * 128 * 64}
    flop_text = cross_check_text(result)[0]
    if result.flop_counter.unchecked_macs:  # on the CPU, FlopCounterMode has no formula for the attention kernel
        assert result.flop_counter.unchecked_macs == 2 * (4 * 10 * 10 * 16)
        assert "not checked: self_attn (MultiheadAttention, 12,800 MACs): no formula for aten._scaled_dot" in flop_text


def test_a_two_layer_lstm_is_counted_and_a_check_that_cannot_see_it_never_says_so():
    result = count_macs(nn.LSTM(input_size=10, hidden_size=20, num_layers=2, batch_first=True), (5, 10))
    assert LSTM_2_LAYERS == 28_000 and result.total == LSTM_2_LAYERS
    flop_text, torchinfo_text = cross_check_text(result)
    if result.flop_counter.checked_macs == 0:  # on the CPU the LSTM is one fused op FlopCounterMode cannot see
        assert "✓" not in flop_text and not result.flop_counter.disagree
        assert flop_text.startswith("0 FLOPs, not checked: (root) (LSTM, 28,000 MACs): no formula for aten.")
    # torchinfo charges every weight and bias at each of the 5 steps: our MACs plus 5·(2·80)·2 bias additions
    assert result.torchinfo_mult_adds == LSTM_2_LAYERS + 5 * 2 * 80 * 2 and torchinfo_text.startswith("29,600 ✓")


def test_a_gru_has_three_gates():
    result = count_macs(nn.GRU(10, 20, batch_first=True), (5, 10))
    assert result.total == 5 * (60 * 10 + 60 * 20) == 9_000


def test_an_lstm_cell_in_a_loop_is_one_row_per_step():
    result = count_macs(CellLoop(), (5, 10))
    assert [(layer.name, layer.macs) for layer in result.layers] == [("cell", 80 * 10 + 80 * 20)] * 5
    assert result.total == 12_000 and result.matches_flop_counter  # the cell decomposes into matmuls it sees


def test_a_linear_after_a_reshape_counts_every_row():
    result = count_macs(FoldedRows(), (512,))
    assert result.total == 16 * 32 * 16 == 8_192  # the issue: 512, one row
    assert result.layers[0].formula == "16·32·16 = 8,192" and result.matches_flop_counter
    assert result.torchinfo.checked_macs == result.total  # 16 rows are its first dimension too: its rule holds


def test_a_sequence_first_model_and_torchinfo_per_image():
    result = count_macs(SequenceFirst(), (5, 10))
    embed, rnn = 5 * 10 * 20, 5 * (80 * 20 + 80 * 20)
    assert [layer.macs for layer in result.layers] == [embed, rnn] and result.total == 17_000
    # torchinfo on one image: the Linear's 220 parameters × 5 steps; the LSTM's 3,360 × 5 steps × 1 sequence
    audit = audit_model(SequenceFirst(), (5, 10))
    assert audit.mult_adds == 5 * 220 + 5 * 3_360 == 17_900  # from a batch of 2, halved, it was 17,350


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_scripted_submodule_is_counted_as_one_row():
    model = ScriptedPart()
    result = count_macs(model, (4,))
    rows = [(layer.name, layer.type, layer.macs) for layer in result.layers]
    assert rows == [("scripted", "RecursiveScriptModule", 4 * 3), ("head", "Linear", 3 * 2)]
    assert result.matches_flop_counter
    assert audit_model(model, (4,)).total == (4 + 1) * 3 + (3 + 1) * 2  # the parameter probe runs too


def test_frozen_batchnorm_counts_as_batchnorm_at_inference():
    def net(norm: nn.Module) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), norm)

    frozen = count_macs(net(FrozenBatchNorm2d(4)), (3, 8, 8))
    plain = count_macs(net(nn.BatchNorm2d(4)), (3, 8, 8))
    conv, norm = 6 * 6 * 4 * 27, 4 * 6 * 6
    assert [layer.macs for layer in frozen.layers] == [conv, norm] == [layer.macs for layer in plain.layers]
    assert frozen.batchnorm_macs == norm == plain.batchnorm_macs
    assert "1 (FrozenBatchNorm2d, 144 MACs): no formula for elementwise x·scale + shift" in cross_check_text(frozen)[0]


def test_a_module_under_two_names_is_one_module():
    result = count_macs(AliasNet(), (8,))
    assert [(layer.name, layer.macs) for layer in result.layers] == [("proj", 64), ("proj", 64)]
    assert result.matches_flop_counter and not result.flop_counter.disagree  # the issue: a false ✗


def test_a_forward_that_reads_values_is_counted_on_real_values():
    assert count_macs(ValueBranch(), (3,)).total == 2 * 9


def test_a_forward_that_cannot_run_is_one_line_naming_the_layer():
    with pytest.raises(ModelError, match=r"^cannot count the multiply-adds of layer '\(root\)' \(BrokenViewNet\): "):
        count_macs(BrokenViewNet(), (1, 8, 8))


def test_the_convention_is_stated_once_in_the_title():
    text = format_macs(count_macs(FoldedRows(), (512,)))
    assert text.count("1 MAC = 1 multiply + 1 add = 2 FLOPs") == 1 and "BatchNorm at inference" in text


def test_an_op_without_a_formula_is_named_beside_the_total():
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.form = nn.Bilinear(3, 4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.form(x[:, :3], x)

    result = count_macs(Pair(), (4,))
    assert result.total == 0 and result.layers[0].uncounted == ["aten._trilinear (a bilinear form)"]
    assert "not in the total: form (Bilinear) ran aten._trilinear (a bilinear form)" in format_macs(result)


def test_a_forward_that_keeps_tensors_on_its_modules_keeps_real_ones():
    class Remembers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.register_buffer("seen", torch.zeros(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.last = self.fc(x)  # a new attribute
            self.seen = x[0].detach()  # a buffer reassigned
            return self.last

    model = Remembers()
    assert count_macs(model, (3,)).total == 9
    assert not hasattr(model, "last") and type(model.seen) is torch.Tensor and not model.seen.any()
    assert type(model(torch.ones(1, 3))) is torch.Tensor and model.state_dict()["seen"].tolist() == [1, 1, 1]
