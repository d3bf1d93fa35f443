"""CIFAR-10 through torchvision's own loader: a local copy in torchvision's layout, or torchvision's download.

torchvision reads CIFAR-10's batches with `pickle.load`, which runs whatever a pickle names. Before it does,
each file's bytes are read once here: hashed (sha256 for the archive, md5 against the published files) and
unpickled by an unpickler that allows nothing but numpy arrays, with the layout checked (a dict of 3,072-byte
rows and one label per row). A folder that passes is then read by torchvision's CIFAR10 itself, its md5 check
replaced by ours, so a course's own CIFAR-10-format subset loads too (recorded as not verified).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reportgen.errors import DataError
from reportgen.files import sha256_file
from reportgen.messages import Message

FOLDER = "cifar-10-batches-py"  # torchvision: root/cifar-10-batches-py/{data_batch_1…5, test_batch, batches.meta}
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
ROW_BYTES = 3 * 32 * 32
# What a CIFAR-10 pickle may name: numpy's array reconstruction, under numpy 1's and numpy 2's module names.
_ALLOWED = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never does")
        with warnings.catch_warnings():  # numpy 2 warns on numpy.core, the name CIFAR-10's own files use
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _safe_load(path: Path) -> tuple[Any, str, str]:
    """(the unpickled object, sha256, md5) of one file, refusing any pickle that names more than numpy arrays."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    try:
        content = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # a broken pickle fails in many ways (EOF, opcodes, our refusal): each is one line
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: not a CIFAR-10 batch file ({reason})") from exc
    return content, hashlib.sha256(raw).hexdigest(), hashlib.md5(raw, usedforsecurity=False).hexdigest()


def _check_batch(path: Path, batch: Any) -> None:
    data, labels = (batch.get("data"), batch.get("labels")) if isinstance(batch, dict) else (None, None)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == ROW_BYTES):
        raise DataError(f"{path}: expected a dict whose 'data' is a uint8 array of {ROW_BYTES}-byte rows (3×32×32)")
    if not (isinstance(labels, list) and len(labels) == len(data) and all(isinstance(y, int) for y in labels)):
        raise DataError(f"{path}: expected 'labels', a list of {len(data)} integers (one per row of 'data')")


def _check_meta(path: Path, meta: Any) -> list[str]:
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: expected a dict with 'label_names', a list of at least 2 class names")
    return names


def _root(data_dir: Path) -> Path:
    """The folder torchvision is given: the one holding cifar-10-batches-py (the batches folder itself works too)."""
    if data_dir.name == FOLDER and data_dir.is_dir():
        return data_dir.parent
    if (data_dir / FOLDER).is_dir():
        return data_dir
    raise DataError(
        f"{data_dir}: no {FOLDER} folder in it (torchvision's CIFAR-10 layout: "
        f"{data_dir}/{FOLDER}/data_batch_1…5, test_batch, batches.meta)"
    )


def _published_md5() -> dict[str, str]:
    from torchvision.datasets import CIFAR10

    return {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list} | {META_FILE: CIFAR10.meta["md5"]}


def check_folder(root: Path) -> tuple[list[str], dict[str, dict[str, str]], dict[str, str]]:
    """Every file safe to unpickle and laid out as CIFAR-10: (class names, the files as the archive records them,
    each file's sha256)."""
    folder = root / FOLDER
    published = _published_md5()
    files: dict[str, dict[str, str]] = {}
    each: dict[str, str] = {}
    for split, names in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        digest, verified = hashlib.sha256(), True
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DataError(f"{folder}: missing {name} (CIFAR-10 has {', '.join(TRAIN_FILES + TEST_FILES)})")
            batch, each[name], md5 = _safe_load(path)
            _check_batch(path, batch)
            digest.update(f"{name}\0{each[name]}\0".encode())  # NUL never occurs in a name: pairs cannot run together
            verified &= md5 == published[name]
        files[split] = {"path": str(folder), "sha256": digest.hexdigest(), "verified": str(verified).lower()}
    if not (folder / META_FILE).is_file():
        raise DataError(f"{folder}: missing {META_FILE} (the class names)")
    meta, each[META_FILE], md5 = _safe_load(folder / META_FILE)
    classes = _check_meta(folder / META_FILE, meta)
    verified = str(md5 == published[META_FILE]).lower()
    files["meta"] = {"path": str(folder / META_FILE), "sha256": each[META_FILE], "verified": verified}
    return classes, files, each


def _torchvision_split(root: Path, train: bool, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """One split read by torchvision's CIFAR10 (download=False), as uint8 (N, 3, 32, 32) and int64 labels."""
    from torchvision.datasets import CIFAR10

    class CheckedCIFAR10(CIFAR10):
        """torchvision's reader; the md5 checks are check_folder's, which also admits other CIFAR-10-format data."""

        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            self.classes = classes
            self.class_to_idx = {name: i for i, name in enumerate(classes)}

    dataset = CheckedCIFAR10(str(root), train=train, download=False)
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.int64)


def download(cache: Path) -> Path:
    """torchvision's own download of CIFAR-10 (needs the network; it checks the archive's md5); returns its root."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(str(cache), train=True, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError; its message spans lines
        raise DataError(
            "cifar10 is not available: no --data-dir was given and torchvision's download failed "
            f"({' '.join(str(exc).split())}). Pass --data-dir DIR, the folder holding {FOLDER}."
        ) from exc
    return cache


def load_cifar10(data_dir: str | Path | None, cache: Path) -> tuple[dict[str, torch.Tensor], dict, Message, list[str]]:
    """(tensors, files, source, classes) as datasets.load_dataset takes them from every source."""
    if data_dir is not None:
        root, source = (
            _root(Path(data_dir).expanduser()),
            Message("torchvision CIFAR10 from {path}", {"path": str(data_dir)}),
        )
    else:
        root, source = download(cache), Message("torchvision {dataset} download", {"dataset": "CIFAR10"})
    classes, files, each = check_folder(root)
    tensors: dict[str, torch.Tensor] = {}
    for split, train in (("train", True), ("test", False)):
        tensors[f"{split}_images"], tensors[f"{split}_labels"] = _torchvision_split(root, train, classes)
    if any(sha256_file(root / FOLDER / name) != sha256 for name, sha256 in each.items()):
        # torchvision must have unpickled the bytes that were checked
        raise DataError(f"{root / FOLDER}: changed while it was being read; try again")
    return tensors, files, source, classes
