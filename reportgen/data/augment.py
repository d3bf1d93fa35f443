"""Train-only augmentation on whole batches of tensors, with per-image random parameters.

Described by one canonical text (e.g. "rotation=10,translate=0.1,scale=0.9-1.1,erasing=0.25") so it
sits in TrainConfig like any other setting, prints in the report and can be compared across trials.
Random crops (zero padding, then one gather), horizontal flips (a mask), random affine transforms (one
affine_grid/grid_sample call per batch) and random erasing (broadcast masks) transform every channel of an
image alike (grey or RGB) — no per-image Python. Each draws random numbers only when it is set, so adding one
leaves the others' streams, and every run without it, as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where images are transformed: parsing a spec must not load it
    import torch

KEYS = ("crop", "flip", "rotation", "translate", "scale", "erasing")
ERASE_AREA = (0.02, 0.2)  # fraction of the image an erased rectangle covers
ERASE_RATIO = (0.3, 3.3)  # its aspect ratio range (torchvision's RandomErasing default)


@dataclass(frozen=True)
class Augment:
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    translate: float = 0.0  # fraction of the image size, uniform in [-translate, translate] per axis
    scale_min: float = 1.0
    scale_max: float = 1.0
    erasing: float = 0.0  # probability that an image gets one random rectangle erased
    crop: int = 0  # pixels of zero padding on each side, then a random crop back to the image size (CIFAR: 4)
    flip: float = 0.0  # probability that an image is mirrored left to right

    @property
    def affine(self) -> bool:
        return bool(self.rotation or self.translate or self.scale_min != 1 or self.scale_max != 1)

    def text(self) -> str:
        parts = []
        if self.crop:
            parts.append(f"crop={self.crop:d}")
        if self.flip:
            parts.append(f"flip={self.flip:g}")
        if self.rotation:
            parts.append(f"rotation={self.rotation:g}")
        if self.translate:
            parts.append(f"translate={self.translate:g}")
        if (self.scale_min, self.scale_max) != (1.0, 1.0):
            parts.append(f"scale={self.scale_min:g}-{self.scale_max:g}")
        if self.erasing:
            parts.append(f"erasing={self.erasing:g}")
        return ",".join(parts)

    @classmethod
    def from_text(cls, text: str) -> Augment:
        values: dict[str, float] = {}
        for part in filter(None, text.split(",")):
            key, _, value = part.partition("=")
            if key == "scale":
                low, _, high = value.partition("-")
                values.update(scale_min=float(low), scale_max=float(high))
            else:
                values[key] = int(value) if key == "crop" else float(value)
        return cls(**values)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """images: float (N, C, H, W) in [0, 1]; returns a new augmented tensor."""
        if self.crop:
            images = self._random_crop(images, generator)
        if self.flip:
            images = self._random_flip(images, generator)
        if self.affine:
            images = self._random_affine(images, generator)
        if self.erasing:
            images = self._random_erasing(images, generator)
        return images

    def _uniform(self, n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor):
        import torch

        return low + (high - low) * torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)

    def _random_crop(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pad by `crop` zeros on each side and cut each image's own H×W window (offsets 0…2·crop per axis)."""
        import torch
        import torch.nn.functional as F

        n, _, h, w = images.shape
        padded = F.pad(images, (self.crop,) * 4)
        offsets = torch.randint(0, 2 * self.crop + 1, (2, n), generator=generator, device=images.device)
        rows = (offsets[0].view(n, 1) + torch.arange(h, device=images.device)).view(n, h, 1)
        cols = (offsets[1].view(n, 1) + torch.arange(w, device=images.device)).view(n, 1, w)
        batch = torch.arange(n, device=images.device).view(n, 1, 1)
        # advanced indices around the channel slice: (N, H, W, C), channels moved back to second place
        return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()

    def _random_flip(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        chosen = torch.rand(images.shape[0], generator=generator, device=images.device) < self.flip
        return torch.where(chosen.view(-1, 1, 1, 1), images.flip(-1), images)

    def _random_affine(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        n = images.shape[0]
        angle = self._uniform(n, -self.rotation, self.rotation, generator, images) * (math.pi / 180)
        scale = self._uniform(n, self.scale_min, self.scale_max, generator, images)
        shift = self._uniform(2 * n, -self.translate, self.translate, generator, images).view(n, 2) * 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _random_erasing(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        n, _, h, w = images.shape
        area = self._uniform(n, *ERASE_AREA, generator, images) * h * w
        ratio = torch.exp(self._uniform(n, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), generator, images))
        eh = torch.sqrt(area * ratio).clamp(1, h)
        ew = torch.sqrt(area / ratio).clamp(1, w)
        top = self._uniform(n, 0, 1, generator, images) * (h - eh)
        left = self._uniform(n, 0, 1, generator, images) * (w - ew)
        chosen = torch.rand(n, generator=generator, device=images.device) < self.erasing
        rows = torch.arange(h, device=images.device).view(1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, w)
        inside = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + ew).view(n, 1, 1))
        )
        mask = (inside & chosen.view(n, 1, 1)).unsqueeze(1)
        return images.masked_fill(mask, 0.0)
