"""Issue #33 item 5: MAC rows never claim what they could not see. Each case is a real model in a student's
models.py, audited by `reportgen params` (and three of them trained by a tiny `reportgen run`): ops without a
formula are "not counted" with the op named, never 0; a forward whose work depends on its input's values is
marked with both figures; where torchinfo's rule is wrong the row says which side is right and why, not ✗;
a torch.compile'd model is audited through its original module."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import idx_run_args, write_idx_dataset

from reportgen.cli import main

MODELS = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from reportgen.models.registry import register_model


    class CdistNet(nn.Module):
        """Distances to 10 learned prototypes: fc 784·16 = 12,544 MACs, then cdist (no formula)."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 16)
            self.protos = nn.Parameter(torch.randn(10, 16))

        def forward(self, x):
            return -torch.cdist(self.fc(x.flatten(1)), self.protos)


    class QuantNet(nn.Module):
        """Dynamically quantised Linear layers: torch.ao.nn.quantized.dynamic.Linear."""

        def __init__(self):
            super().__init__()
            base = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
            self.net = torch.ao.quantization.quantize_dynamic(base, {nn.Linear}, dtype=torch.qint8)

        def forward(self, x):
            return self.net(x)


    class FFTNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 15, 10)

        def forward(self, x):
            return self.fc(torch.fft.rfft(x, dim=-1).abs().flatten(1))


    class NumpyMatmul(torch.autograd.Function):
        """A custom autograd Function computing in NumPy: no torch op sees its 32·10 products."""

        @staticmethod
        def forward(ctx, x, w):
            return torch.from_numpy(x.detach().numpy() @ w.detach().numpy())

        @staticmethod
        def backward(ctx, grad):
            return None, None


    class TorchMatmul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            return x @ w

        @staticmethod
        def backward(ctx, grad):
            return None, None


    class Reverse(torch.autograd.Function):
        """A gradient-reversal layer: the forward is a view of its input, no work to count."""

        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -grad


    class FunctionNet(nn.Module):
        def __init__(self, numpy=True):
            super().__init__()
            self.numpy = numpy
            self.fc = nn.Linear(784, 32)
            self.w = nn.Parameter(torch.randn(32, 10))

        def forward(self, x):
            h = Reverse.apply(self.fc(x.flatten(1)))
            return (NumpyMatmul if self.numpy else TorchMatmul).apply(h, self.w)


    class Branchy(nn.Module):
        """Runs `extra` (10·10 = 100 MACs) only when the input's mean is positive."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)
            self.extra = nn.Linear(10, 10)

        def forward(self, x):
            y = self.fc(x.flatten(1))
            if x.mean() > 0:
                y = self.extra(y)
            return y


    class ReadsValues(nn.Module):
        """Reads a value (`x.sum() > 1e9`) but takes the same branch for any ordinary input."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            y = self.fc(x.flatten(1))
            return y * 2 if x.sum() > 1e9 else y


    class Pruned(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)
            prune.l1_unstructured(self.fc, "weight", amount=0.5)

        def forward(self, x):
            return self.fc(x.flatten(1))


    class Packed(nn.Module):
        """Rows of the image as a sequence, packed to 20 steps."""

        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(28, 16, batch_first=True)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            rows = x.squeeze(1)
            lengths = torch.full((rows.shape[0],), 20, dtype=torch.long)
            packed = nn.utils.rnn.pack_padded_sequence(rows, lengths, batch_first=True, enforce_sorted=False)
            _, (h, _) = self.rnn(packed)
            return self.fc(h[-1])


    class PartScripted(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(784, 32)))
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.body(x))


    class SharedInLists(nn.Module):
        """One Linear(32, 32) in two nested ModuleLists."""

        def __init__(self):
            super().__init__()
            block = nn.Linear(32, 32)
            self.stem = nn.Linear(784, 32)
            self.stages = nn.ModuleList([nn.ModuleList([block, nn.ReLU()]), nn.ModuleList([nn.ReLU(), block])])
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            x = self.stem(x.flatten(1))
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
            return self.head(x)


    @register_model
    def Compiled():
        return torch.compile(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), backend="eager")
''')


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mac_honesty")
    (folder / "nets.py").write_text(MODELS, "utf-8")
    return folder


@pytest.fixture
def params(student, cli, monkeypatch):
    """`reportgen params nets.py:<Class>` in the student's folder: (exit code, the MAC section, all output)."""
    monkeypatch.chdir(student)

    def run(model: str) -> tuple[int, str, str]:
        code, out, err = cli("params", f"nets.py:{model}")
        assert code == 0, err
        return code, out[out.index("MACs of ") :], out

    return run


def _row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(name + " "))


@pytest.mark.parametrize(
    ("model", "layer", "op"),
    [
        ("CdistNet", "(root) (forward)", "aten._cdist_forward (pairwise distances: no formula here)"),
        ("QuantNet", "net.1", "quantized.linear_dynamic (a quantised kernel: no formula here)"),
        ("FFTNet", "(root) (forward)", "aten._fft_r2c (a fast Fourier transform: no formula here)"),
        ("FunctionNet", "(root) (forward)", "NumpyMatmul.forward (a custom autograd Function whose output no"),
    ],
)
def test_an_op_without_a_formula_is_not_counted_and_named_never_zero(params, model, layer, op):
    _, macs, _ = params(model)
    assert "no multiply-adds ran in it" not in macs  # the old claim for these rows
    assert f"not counted: {op}" in _row(macs, layer)
    total = next(line for line in macs.splitlines() if line.startswith("total MACs per image: "))
    assert total.startswith("total MACs per image: at least ") and "not counted (below)" in total
    assert any(line.startswith("not in the total: ") and op in line for line in macs.splitlines())


def test_custom_functions_computing_with_torch_ops_are_counted_and_a_view_is_no_work(params, cli):
    _, macs, _ = params("FunctionNet?numpy=0")
    assert "not counted" not in macs and "not in the total" not in macs
    assert "total MACs per image: 25,408 (" in macs  # fc 784·32 + the Function's mm 32·10, counted from its ops


def test_a_forward_whose_work_depends_on_the_input_shows_both_figures(params):
    _, macs, _ = params("Branchy")
    line = next(line for line in macs.splitlines() if line.startswith("input-dependent: "))
    figures = sorted(line.split(": ", 1)[1].split(" for another")[0].replace(" MACs for one random input,", "").split())
    assert figures == ["7,840", "7,940"]  # fc alone, fc + extra (10·10)
    assert "extra (Linear): " in line and "the total above is the first" in line


def test_a_forward_that_reads_values_but_runs_the_same_ops_is_not_marked(params):
    _, macs, _ = params("ReadsValues")
    assert "input-dependent" not in macs and "total MACs per image: 7,840 (= 15,680 FLOPs)" in macs


@pytest.mark.parametrize(
    ("model", "line", "why"),
    [
        (
            "Pruned",
            "torchinfo mult-adds: 3,930 ≠ ours; differs, explained: fc (Linear): torchinfo 3,930, ours 7,840 + 10 bias: ",
            (
                "torchinfo counts only the weights pruning left nonzero, but the forward multiplies by the whole masked "
                "weight, zeros included: ours is right"
            ),
        ),
        (
            "Packed",
            "torchinfo mult-adds: 942,250 ✓ for the 160 MACs it can see",
            (
                "rnn (LSTM): torchinfo 942,080, ours 56,320 + 2,560 bias: torchinfo's rule does not follow a "
                "PackedSequence"
            ),
        ),
        (
            "PartScripted",
            "torchinfo total: 50,570 ≠ ours, explained: ",
            (
                "torchinfo counts the parameters of a scripted submodule twice, once for the scripted module and once "
                "for its layers; the model stores and trains each once: ours is right"
            ),
        ),
        (
            "SharedInLists",
            "torchinfo total: 27,562 ≠ ours, explained: ",
            (
                "torchinfo counts the 1,056 shared (tied) parameters once per layer that uses them; the model stores and "
                "trains 26,506: ours is right"
            ),
        ),
    ],
)
def test_where_torchinfo_is_wrong_the_row_says_which_side_is_right_and_why(params, model, line, why):
    _, _, out = params(model)
    row = next(text for text in out.splitlines() if text.startswith(line.split(":")[0] + ":"))
    assert "✗" not in out and "MISMATCH" not in out
    assert " ".join(row.split()).startswith(" ".join(line.split())) and why in row


def test_a_scripted_part_is_not_checked_by_torchinfo_and_says_why(params):
    _, macs, _ = params("PartScripted")
    assert "not checked: body (RecursiveScriptModule, 25,088 MACs): it cannot see inside a scripted module" in macs


def test_a_compiled_model_is_audited_through_its_original_module(params):
    _, macs, out = params("Compiled")
    assert "already tracked for mutation" not in out
    assert "torch.compile'd: audited through its original module (_orig_mod)" in out
    assert "all parameters:  7,850" in out and "torchinfo total: 7,850 ✓" in out
    assert _row(macs, "1").split()[-1] == "7,840" and "total MACs per image: 7,840 (" in macs


@pytest.fixture(scope="module")
def trained(student, tmp_path_factory) -> Path:
    """A tiny real run of three of the models (1 epoch on a small IDX set), rendered in English and Korean."""
    root = tmp_path_factory.mktemp("mac_run")
    idx = write_idx_dataset(root / "idx", n_train=100, n_test=30)
    models = ",".join(f"{student / 'nets.py'}:{name}" for name in ("CdistNet", "Branchy", "Pruned"))
    common = ["--runs-dir", root / "runs"]
    args = ["run", "--models", models, *idx_run_args(idx), *common, "--output-dir", root / "en", "--run-id", "r"]
    assert main([str(a) for a in args]) == 0
    render = ["render", root / "runs" / "r", "--lang", "ko", "--output-dir", root / "ko", "--no-pdf"]
    assert main([str(a) for a in render]) == 0
    return root


def _cells(root: Path, lang: str, key: str) -> list[dict]:
    table = json.loads((root / lang / "r" / "summary.json").read_text("utf-8"))["report"]["tables"][key]
    return [cell for row in table["rows"] + table.get("footer", []) for cell in row["cells"]]


@pytest.mark.slow
def test_a_run_reports_what_it_did_not_count_in_english_and_korean(trained):
    cdist = _cells(trained, "en", "layers/nets.py:CdistNet")
    forward = next(cell for cell in cdist if cell.get("text", "") == "not counted")
    assert "aten._cdist_forward (pairwise distances: no formula here)" in forward["note"]
    total = next(cell for cell in cdist if cell.get("text", "").startswith("Total per image"))
    assert total["text"].startswith("Total per image: at least 12,544 MACs")
    assert total["note"] == "not counted: (root) (CdistNet): aten._cdist_forward (pairwise distances: no formula here)"
    # each model trained once: its cost is in its comparison row (tables.merged_costs)
    cost = next(cell for cell in _cells(trained, "en", "comparison") if cell.get("text", "").startswith("≥ "))
    assert cost["text"] == "≥ 12,544" and cost["note"] == total["note"]
    ko = _cells(trained, "ko", "layers/nets.py:CdistNet")
    assert any(cell.get("text", "") == "세지 않음" and "쌍별 거리: 여기에는 계산식 없음" in cell["note"] for cell in ko)


@pytest.mark.slow
def test_a_run_marks_input_dependence_and_explains_torchinfo_in_english_and_korean(trained):
    branchy = next(
        c for c in _cells(trained, "en", "layers/nets.py:Branchy") if c.get("text", "").startswith("Total per image")
    )
    assert "input-dependent: " in branchy["note"] and "7,840" in branchy["note"] and "7,940" in branchy["note"]
    pruned = next(
        c for c in _cells(trained, "en", "layers/nets.py:Pruned") if c.get("text", "").startswith("torchinfo")
    )
    assert pruned["text"] == "torchinfo: ≠ 3,930" and pruned["verdict"] is True
    assert "fc (Linear): torchinfo 3,930, ours 7,840 + 10 bias" in pruned["note"] and "ours is right" in pruned["note"]
    korean = next(
        c for c in _cells(trained, "ko", "layers/nets.py:Pruned") if c.get("text", "").startswith("torchinfo")
    )
    assert korean["verdict"] is True and "이 보고서의 수가 맞습니다" in korean["note"]
    assert "ours is right" not in korean["note"] and "pruning" not in korean["note"]
