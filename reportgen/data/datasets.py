"""Datasets decoded once into uint8 tensors (N, C, H, W) with int64 labels, checksummed.

Sources: IDX files (.gz or raw) from a directory — Fashion-MNIST defaults to the Debian package
`dataset-fashion-mnist` — or torchvision's MNIST download when no directory is given and the
network is reachable; CIFAR-10 (RGB) from a local copy or torchvision's download (data/cifar.py); image
files (data/image_files.py). C is 1 for grey images, 3 for colour.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reportgen.data import CLASS_NAMES, DATASETS, FORMATS, TORCHVISION
from reportgen.errors import DataError
from reportgen.messages import Message

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# sha256 of the decompressed IDX bytes, so .gz and raw copies check the same way.
KNOWN_CONTENT_SHA256 = {
    "fashion-mnist": {
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


def default_cache() -> Path:
    """Decoded-image cache and downloads; read at call time so $REPORTGEN_CACHE always applies."""
    return Path(os.environ.get("REPORTGEN_CACHE", "~/.cache/reportgen")).expanduser()


IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # ubyte images (3 dims) and labels (1 dim)
# An IDX file larger than this (after decompression) is refused from its header, before it is read:
# the whole of Fashion-MNIST's training images is 47 MB.
MAX_IDX_BYTES = 2 * 2**30
_READ_CHUNK = 2**20


@dataclass
class Dataset:
    """Both splits as tensors plus what the report needs to say where they came from."""

    name: str
    train_images: torch.Tensor  # uint8 (N, C, H, W): C = 1 (grey) or 3 (RGB)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: float | list[float]  # one figure for grey images; one per channel for colour (unless one was given)
    std: float | list[float]
    source: Message  # where the images came from, worded in the report's language ("IDX files in {path}")
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # split → {path, sha256, verified}
    val_images: torch.Tensor | None = None  # optional validation split carved from the training data
    val_labels: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _idx_header(raw: bytes, path: Path, dims: int) -> tuple[list[int], int]:
    """(shape, total file size in bytes) from an IDX header, refusing what cannot be a dataset."""
    if len(raw) < 4 + 4 * dims:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != IDX_MAGIC[dims]:
        raise DataError(
            f"{path}: not an IDX file with {dims} dimension(s) (magic 0x{magic:08x}, expected 0x{IDX_MAGIC[dims]:08x})"
        )
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    if shape[0] == 0:
        raise DataError(
            f"{path}: the IDX header says 0 {'images' if dims == 3 else 'labels'}; a split needs at least one"
        )
    if dims == 3 and 0 in shape[1:]:
        raise DataError(f"{path}: the IDX header says images of {shape[1]}x{shape[2]} pixels")
    expected = 4 + 4 * dims + math.prod(shape)
    if expected > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: the IDX header promises {shape} ({expected:,} bytes), more than the "
            f"{MAX_IDX_BYTES:,} bytes reportgen reads from one file"
        )
    return shape, expected


def parse_idx(raw: bytes, path: Path, dims: int) -> torch.Tensor:
    """Decode an unsigned-byte IDX file, checking magic number and length against its header."""
    shape, expected = _idx_header(raw, path, dims)
    offset = 4 + 4 * dims
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header promises {shape} ({expected} bytes), file has {len(raw)} bytes"
            + (" — truncated" if len(raw) < expected else "")
        )
    data = torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(shape)
    return data.unsqueeze(1) if dims == 3 else data.long()


def read_idx(path: Path, dims: int) -> tuple[torch.Tensor, str]:
    """Decode an IDX file (.gz or raw) and the sha256 of its decompressed bytes, streaming.

    The header is read first; then exactly the bytes it promises, and one more to detect extra data.
    A gzip file whose header claims a few images but inflates to gigabytes (a decompression bomb) is
    refused after reading one byte past what the header promised, never inflated whole.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            head = handle.read(4 + 4 * dims)
            shape, expected = _idx_header(head, path, dims)
            if path.suffix != ".gz":
                size = os.fstat(handle.fileno()).st_size
                if size != expected:
                    raise DataError(
                        f"{path}: IDX header promises {shape} ({expected} bytes), file has {size} "
                        "bytes" + (" — truncated" if size < expected else "")
                    )
            buffer = bytearray(head)  # grows with what is really there, not with what the header claims
            while len(buffer) < expected:
                chunk = handle.read(min(_READ_CHUNK, expected - len(buffer)))
                if not chunk:
                    raise DataError(
                        f"{path}: IDX header promises {shape} ({expected} bytes), file has "
                        f"{len(buffer)} bytes — truncated"
                    )
                buffer += chunk
            if handle.read(1):
                raise DataError(
                    f"{path}: more data than the IDX header promises ({shape}, {expected} bytes); "
                    "stopped reading — the file is corrupt or not an IDX file"
                )
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    digest = hashlib.sha256(buffer).hexdigest()
    data = torch.frombuffer(buffer, dtype=torch.uint8, offset=4 + 4 * dims).reshape(shape)
    return (data.unsqueeze(1) if dims == 3 else data.long()), digest


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    variants = (stem, stem.replace("-idx", ".idx"))
    for folder in (directory, directory / "raw"):
        for name in variants:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    return None


def load_idx_dir(directory: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, str]]]:
    """Load the four IDX files from a directory, verifying known checksums when we have them."""
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist")
    tensors: dict[str, torch.Tensor] = {}
    files: dict[str, dict[str, str]] = {}
    known = KNOWN_CONTENT_SHA256.get(name, {})
    for split, stem in SPLIT_FILES.items():
        path = _find_idx_file(directory, stem)
        if path is None:
            raise DataError(f"{directory}: missing {stem} (or {stem}.gz) for the {split.replace('_', ' ')}")
        tensor, digest = read_idx(path, 3 if split.endswith("images") else 1)
        if split in known and digest != known[split]:
            raise DataError(
                f"{path}: sha256 of contents is {digest[:16]}…, expected {known[split][:16]}… "
                f"for {name} — the file is corrupt or not {name}"
            )
        tensors[split] = tensor
        files[split] = {"path": str(path), "sha256": digest, "verified": str(split in known).lower()}
    for split in ("train", "test"):
        if len(tensors[f"{split}_images"]) != len(tensors[f"{split}_labels"]):
            raise DataError(
                f"{directory}: {split} images and labels differ in count "
                f"({len(tensors[f'{split}_images'])} vs {len(tensors[f'{split}_labels'])})"
            )
    return tensors, files


def _download(name: str, cache: Path) -> Path:
    """torchvision's real download (needs the network); returns the raw IDX folder."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, TORCHVISION[name])
    try:
        for train in (True, False):
            dataset_class(str(cache), train=train, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError; its message spans lines
        raise DataError(
            f"{name} is not available: no --data-dir was given and torchvision's download "
            f"failed ({' '.join(str(exc).split())}). Pass --data-dir DIR with the four IDX files (.gz or raw)."
        ) from exc
    return cache / TORCHVISION[name] / "raw"


def _subset(
    images: torch.Tensor, labels: torch.Tensor, size: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if size is None or size >= len(labels):
        return images, labels
    keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size].sort().values
    return images[keep].contiguous(), labels[keep].contiguous()


def _carve_validation(images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int):
    """Seeded split of the training data into (train, validation); both keep the original order."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    size = max(1, round(fraction * len(labels)))
    val, train = order[:size].sort().values, order[size:].sort().values
    return images[train].contiguous(), labels[train].contiguous(), images[val].contiguous(), labels[val].contiguous()


def _idx_source(dataset: str, data_dir: str | Path | None, cache_dir: Path):
    if data_dir is not None:
        directory, source = Path(data_dir).expanduser(), Message("IDX files in {path}", {"path": str(data_dir)})
    elif dataset == "fashion-mnist" and FASHION_MNIST_DIR.is_dir():
        directory, source = FASHION_MNIST_DIR, Message("Debian package dataset-fashion-mnist")
    elif dataset == "custom":
        raise DataError("dataset 'custom' needs data_dir (IDX) or train/test paths with an image format")
    else:
        download = Message("torchvision {dataset} download", {"dataset": TORCHVISION[dataset]})
        directory, source = _download(dataset, cache_dir), download
    tensors, files = load_idx_dir(directory, dataset)
    return tensors, files, source, CLASS_NAMES.get(dataset)


def _image_source(dataset: str, fmt: str, train: str | None, test: str | None, cache_dir: Path):
    from reportgen.data.image_files import load_image_splits

    if not train or not test:
        raise DataError(f"data format {fmt!r} needs both 'data.train' and 'data.test' paths")
    splits = load_image_splits(fmt, Path(train).expanduser(), Path(test).expanduser(), cache_dir)
    classes = splits["classes"]
    if (
        dataset in CLASS_NAMES
        and classes == [str(i) for i in range(len(classes))]
        and len(classes) <= len(CLASS_NAMES[dataset])
    ):
        classes = CLASS_NAMES[dataset]  # numbered labels of a known dataset get its class names
    return (
        splits,
        splits["files"],
        Message("{format} {train} / {test}", {"format": fmt, "train": train, "test": test}),
        classes,
    )


def _channel_statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (sample) standard deviation in [0, 1], summed in float64 a slice at a time:
    CIFAR-10's training split as float32 at once would take 600 MB."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), 4096):
        pixels = images[start : start + 4096].double().div_(255)
        total += pixels.sum((0, 2, 3))
        squares += pixels.square().sum((0, 2, 3))
    count = images.numel() // images.shape[1]
    mean = total / count
    variance = (squares - count * mean.square()).clamp_(min=0) / max(1, count - 1)
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in variance.sqrt()]


def _statistics(images: torch.Tensor, mean, std, source: Message) -> tuple[float | list[float], float | list[float]]:
    """The normalisation of the training split actually used: for grey images one mean and std (as always),
    for colour one per channel; a figure given in the spec is kept (one figure serves every channel)."""
    if images.shape[1] == 1:
        pixels = images.float().div_(255)
        measured: tuple[Any, Any] = (round(float(pixels.mean()), 4), round(float(pixels.std()), 4))
    else:
        measured = _channel_statistics(images)
    mean, std = (measured[0] if mean is None else mean, measured[1] if std is None else std)
    if 0 in (std if isinstance(std, list) else [std]):
        which = "" if not isinstance(std, list) else f" in channel {std.index(0)} (of {len(std)})"
        raise DataError(
            f"{source}: every training pixel{which} has the same value, so the images cannot be "
            "normalised (standard deviation 0); give data.mean and data.std, or check the files"
        )
    return mean, std


def load_dataset(
    dataset: str,
    data_dir: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    mean: float | list[float] | None = None,
    std: float | list[float] | None = None,
    format: str = "idx",
    train: str | None = None,
    test: str | None = None,
    validation: float | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load a dataset; subsets are a seeded random choice so every model sees the same images."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    if format not in FORMATS:
        raise DataError(f"unknown data format {format!r}: expected one of {', '.join(FORMATS)}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache()
    if format == "idx" and dataset == "cifar10":
        from reportgen.data.cifar import load_cifar10

        tensors, files, source, classes = load_cifar10(data_dir, cache)
    elif format == "idx":
        tensors, files, source, classes = _idx_source(dataset, data_dir, cache)
    else:
        tensors, files, source, classes = _image_source(dataset, format, train, test, cache)
    train_x, train_y = _subset(tensors["train_images"], tensors["train_labels"], train_subset, seed)
    test_x, test_y = _subset(tensors["test_images"], tensors["test_labels"], test_subset, seed + 1)
    val_x = val_y = None
    if validation:
        train_x, train_y, val_x, val_y = _carve_validation(train_x, train_y, validation, seed + 2)
    for split, labels in (("training", train_y), ("test", test_y)):
        if len(labels) == 0:
            raise DataError(f"{source}: the {split} split has no images")
    classes = classes or [str(i) for i in range(int(max(train_y.max(), test_y.max())) + 1)]
    if int(train_y.max()) >= len(classes) or int(test_y.max()) >= len(classes):
        raise DataError(
            f"{source}: labels go up to {int(max(train_y.max(), test_y.max()))}, "
            f"but {dataset} has {len(classes)} classes"
        )
    present = torch.unique(train_y)
    if len(classes) < 2 or len(present) < 2:
        only = classes[int(present[0])] if len(present) else "none"
        raise DataError(
            f"{source}: the training split has only one class ({only!r}); "
            "a classifier needs images of at least 2 classes"
        )
    if mean is None or std is None:  # statistics of the training split actually used, reported as such
        mean, std = _statistics(train_x, mean, std, source)
    return Dataset(dataset, train_x, train_y, test_x, test_y, classes, mean, std, source, files, val_x, val_y)


def load_recorded_dataset(data_spec: dict, seed: int, recorded_files: dict[str, dict[str, str]]) -> Dataset:
    """Reload the exact data an archived run used, refusing files that changed since."""
    data = load_dataset(**data_spec, seed=seed)
    for split, info in recorded_files.items():
        if data.files[split]["sha256"] != info["sha256"]:
            raise DataError(
                f"{data.files[split]['path']}: differs from the file the run was trained on "
                f"(sha256 {data.files[split]['sha256'][:16]}…, recorded {info['sha256'][:16]}…)"
            )
    return data
