"""Small networks for the parameter-audit tests: tied weights, frozen layers, every supported layer type."""

from __future__ import annotations

import torch
from torch import nn


class TiedNet(nn.Module):
    """Embedding(100, 16) whose weight is tied to the output Linear(16, 100): 1,600 + 100 bias = 1,700.

    Input shape (8,): eight float "tokens" turned into indices inside forward.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 100)
        self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = (x.abs() * 10).long().clamp(0, 99)
        return self.head(self.embed(idx))


class FrozenNet(nn.Module):
    """Linear(4, 8) frozen (40) then Linear(8, 2) trainable (18). Input shape (4,)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))


class ScaleShift(nn.Module):
    """A custom layer with raw parameters: no formula known, so the audit falls back to numel."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n))
        self.shift = nn.Parameter(torch.zeros(1, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class AllLayersNet(nn.Module):
    """One of every layer type the audit has a formula for, plus a custom raw-parameter layer.

    Input shape (4, 8, 8).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)  # (3·3·4/2 + 1)·8 = 152
        self.bn2 = nn.BatchNorm2d(8)  # 16
        self.gn = nn.GroupNorm(2, 8)  # 16
        self.inorm = nn.InstanceNorm2d(8, affine=True, track_running_stats=True)  # 16
        self.prelu = nn.PReLU(8)  # 8
        self.deconv = nn.ConvTranspose2d(8, 4, 2, stride=2, groups=2)  # 2·2·8·4/2 + 4 = 68
        self.conv3d = nn.Conv3d(1, 2, 3, padding=1)  # (3·3·3·1 + 1)·2 = 56
        self.bn3 = nn.BatchNorm3d(2)  # 4
        self.conv1d = nn.Conv1d(2, 6, 3, padding=1, bias=False)  # 3·2·6 = 36
        self.bn1 = nn.BatchNorm1d(6)  # 12
        self.ln = nn.LayerNorm(6)  # 12
        self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(10, 7, batch_first=True)
        self.rnn = nn.RNN(7, 3, batch_first=True, nonlinearity="relu", bias=False)
        self.embed = nn.Embedding(10, 3)  # 30
        self.bilinear = nn.Bilinear(12, 12, 5)  # (12·12 + 1)·5 = 725
        self.custom = ScaleShift(5)  # numel = 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.prelu(self.inorm(self.gn(self.bn2(self.conv(x)))))  # (B, 8, 8, 8)
        h = self.deconv(h)  # (B, 4, 16, 16)
        h = self.bn3(self.conv3d(h.unsqueeze(1)))  # (B, 2, 4, 16, 16)
        h = self.bn1(self.conv1d(h.mean(dim=(3, 4))))  # (B, 6, 4)
        seq = self.ln(h.transpose(1, 2))  # (B, 4, 6)
        seq, _ = self.lstm(seq)  # (B, 4, 10)
        seq, _ = self.gru(seq)  # (B, 4, 7)
        seq, _ = self.rnn(seq)  # (B, 4, 3)
        idx = torch.arange(seq.shape[1], device=seq.device).expand(seq.shape[0], -1)
        flat = (seq + self.embed(idx)).flatten(1)  # (B, 12)
        return self.custom(self.bilinear(flat, flat))  # (B, 5)


class VariantsNet(nn.Module):
    """Layer variants that forward never calls (audited anyway, listed last, no output shape).

    Input shape (3,): only `used` runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(3, 2)
        self.lstm_proj = nn.LSTM(4, 6, num_layers=3, proj_size=2)
        self.lstm_nobias = nn.LSTM(4, 6, bias=False, bidirectional=True)
        self.deconv1d = nn.ConvTranspose1d(3, 5, 4, bias=False)
        self.deconv3d = nn.ConvTranspose3d(2, 4, 3)
        self.depthwise = nn.Conv2d(6, 6, 3, groups=6, dilation=2)
        self.ln_nobias = nn.LayerNorm((4, 5), bias=False)
        self.ln_plain = nn.LayerNorm(7, elementwise_affine=False)
        self.bn_noaffine = nn.BatchNorm2d(5, affine=False)
        self.bn_nostats = nn.BatchNorm1d(5, track_running_stats=False)
        self.inorm_default = nn.InstanceNorm1d(4)
        self.prelu_one = nn.PReLU()
        self.linear_nobias = nn.Linear(10, 3, bias=False)
        self.bag = nn.EmbeddingBag(20, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


class BrokenViewNet(nn.Module):
    """Fails in its own forward code (a hard-coded view), not inside a child layer. Input shape (1, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(72, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(-1, 999))


# --------------------------------------------------------------------------- MAC-counting nets (issue #26)


class SelfAttention(nn.Module):
    """nn.MultiheadAttention(64, 4) over its input as query, key and value. Input shape (10, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x)[0]


class CellLoop(nn.Module):
    """nn.LSTMCell(10, 20) stepped over the 5 steps of an input of shape (5, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(10, 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = x.new_zeros(x.shape[0], 20)
        for step in range(x.shape[1]):
            h, c = self.cell(x[:, step], (h, c))
        return h


class FoldedRows(nn.Module):
    """An input of shape (512,) reshaped to 16 rows of 32 before Linear(32, 16): the batch is not the only
    leading dimension (frames folded into the batch, proposals of a detection head)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(-1, 32))


class SequenceFirst(nn.Module):
    """(batch, 5, 10) turned sequence-first, then Linear(10, 20) and a sequence-first LSTM(20, 20)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(10, 20)
        self.rnn = nn.LSTM(20, 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.embed(x.transpose(0, 1)))[0]


class ScriptedPart(nn.Module):
    """A scripted Linear(4, 3) + ReLU inside an ordinary model, then Linear(3, 2). Input shape (4,)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.scripted(x))


class AliasNet(nn.Module):
    """One Linear(8, 8) reachable as `proj` and as `alias`, called once under each name. Input shape (8,)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.alias = self.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alias(self.proj(x))


class ValueBranch(nn.Module):
    """A forward that reads values (`if x.sum() > 0`): Linear(3, 3) once or twice; counted on real values."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 1e9 else self.fc(self.fc(x))
