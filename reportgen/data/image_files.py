"""Image-file dataset sources (PNG tar archives, PNG folders, class-per-folder trees), decoded once.

Every source becomes the same tensors as the IDX loader: images uint8 (N, C, H, W), labels int64 (N,), where
C is 1 when every image of the split is grey (R = G = B in every pixel, whatever the file's mode) and 3 (RGB)
as soon as one has colour; grey images of a colour split get their grey value in all three channels.
Decoding tens of thousands of small images takes seconds, so results are cached under the source's
sha256; a later run only re-hashes the source and loads one tensor file.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import tarfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image

from reportgen.errors import DataError
from reportgen.files import atomic_write, sha256_file

NAME_PATTERN = re.compile(r"(\d+)_(\d+)\.png", re.IGNORECASE)  # {number}_{label}.png
CLASS_FOLDER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
MAX_MEMBER_BYTES = 64 * 2**20  # no single training image is this big; refuse before reading it into memory
# Width × height are read from the image header (PIL opens lazily) and checked before any pixel is decoded:
# a small PNG can declare 50,000 × 50,000 pixels and inflate to gigabytes.
MAX_IMAGE_PIXELS = 2048 * 2048
MAX_SPLIT_PIXELS = 2 * 2**30  # all decoded images of one split together (uint8: bytes), before caching
MAX_LABEL = 2**62  # labels must fit int64 after parsing
CACHE_FORMAT = 2  # bump when decoding changes, so old cache files stop matching (2: colour images kept as RGB)
KINDS = ("png_tar", "png_folder", "class_folders")
# Everything PIL may raise on a broken file: it has no single exception family for decode errors.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)

Decoded = tuple  # (images, labels) or (images, labels, classes)


# ---------------------------------------------------------------- shared decoding helpers


def _is_metadata(rel: str) -> bool:
    """macOS archivers add `._name` / `__MACOSX/` companions and Jupyter adds hidden checkpoint folders."""
    parts = PurePosixPath(rel).parts
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


def _parse_name(rel: str, where: str) -> tuple[int, int]:
    match = NAME_PATTERN.fullmatch(PurePosixPath(rel).name)
    if match is None:
        raise DataError(f"{where}: {rel!r} is not named {{number}}_{{label}}.png (e.g. 00042_7.png)")
    number, label = int(match[1]), int(match[2])
    if label > MAX_LABEL:
        raise DataError(f"{where}: {rel!r} has label {label}, which is too large")
    return number, label


class _SizeCheck:
    """Image sizes of one split, checked from each header before decoding: one size for all, bounded."""

    def __init__(self, where: str) -> None:
        self.where, self.first, self.total = where, None, 0

    def __call__(self, size: tuple[int, int], name: str) -> None:
        width, height = size
        if width * height > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{self.where}: {name!r} is {width}x{height} pixels (from its header), more than "
                f"the {MAX_IMAGE_PIXELS:,} pixels allowed for one image; not decoded"
            )
        if self.first is None:
            self.first = (size, name)
        elif size != self.first[0]:
            (w0, h0), first = self.first
            raise DataError(f"{self.where}: {name!r} is {width}x{height} pixels, but {first!r} is {w0}x{h0}")
        self.total += width * height
        if self.total > MAX_SPLIT_PIXELS:
            raise DataError(
                f"{self.where}: the images add up to more than {MAX_SPLIT_PIXELS:,} pixels; "
                "too large to decode into memory"
            )


def _decode_image(
    data: bytes, where: str, formats: Iterable[str], check_size: Callable[[tuple[int, int]], None] | None = None
) -> np.ndarray:
    """Decode one image to an 8-bit grey (H, W) array, or RGB (H, W, 3) when its pixels have colour, refusing
    other formats and high bit depths (alpha is dropped, as before).

    An RGB or palette file whose every pixel has R = G = B is grey: the same (H, W) array its conversion to 'L'
    gives, so grey images saved as RGB stay one channel. `check_size` sees (width, height) from the header before
    any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in formats:
                raise DataError(f"{where}: is {image.format or 'not an image'}, expected {'/'.join(formats)}")
            if check_size is not None:
                check_size(image.size)
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # convert('L') would clip, not scale
                raise DataError(f"{where}: {image.mode} (16/32-bit) images are not supported; save as 8-bit")
            image.load()
            if image.mode in ("1", "L", "LA"):
                return np.asarray(image.convert("L"), dtype=np.uint8)
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except _PIL_ERRORS as exc:
        raise DataError(f"{where}: cannot decode image ({exc})") from exc
    grey = (pixels[:, :, 0] == pixels[:, :, 1]).all() and (pixels[:, :, 1] == pixels[:, :, 2]).all()
    return np.ascontiguousarray(pixels[:, :, 0]) if grey else pixels


def _stack(arrays: list[np.ndarray], names: list[str], where: str) -> torch.Tensor:
    """(N, C, H, W) uint8, insisting on one image size — the models have a fixed input shape. C is 1 for a
    split of grey images, else 3, with grey images repeated into the three channels."""
    if not arrays:
        raise DataError(f"{where}: contains no images")
    first = arrays[0].shape[:2]
    for array, name in zip(arrays, names):
        if array.shape[:2] != first:
            raise DataError(
                f"{where}: {name!r} is {array.shape[1]}x{array.shape[0]} pixels, "
                f"but {names[0]!r} is {first[1]}x{first[0]}"
            )
    if all(array.ndim == 2 for array in arrays):
        return torch.from_numpy(np.stack(arrays)).unsqueeze(1).contiguous()
    colour = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    return torch.from_numpy(np.stack(colour)).permute(0, 3, 1, 2).contiguous()


def _numbered(entries: Iterator[tuple[str, bytes]], where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode {number}_{label}.png entries, ordered by number (archive/listing order is arbitrary)."""
    items: dict[int, tuple[str, int, np.ndarray]] = {}
    sizes = _SizeCheck(where)
    for rel, data in entries:
        number, label = _parse_name(rel, where)
        if number in items:
            raise DataError(f"{where}: {rel!r} and {items[number][0]!r} have the same number {number}")
        items[number] = (
            rel,
            label,
            _decode_image(data, f"{where}: {rel!r}", ("PNG",), lambda size, rel=rel: sizes(size, rel)),
        )
    ordered = [items[n] for n in sorted(items)]
    images = _stack([a for _, _, a in ordered], [r for r, _, _ in ordered], where)
    return images, torch.tensor([label for _, label, _ in ordered], dtype=torch.int64)


# ---------------------------------------------------------------- decoders


def _tar_pngs(archive: tarfile.TarFile, path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) of every .png member, read in memory — nothing touches the disk."""
    for member in archive:  # read each member as it is reached: one decompression pass for .tar.gz
        if not member.name.lower().endswith(".png") or _is_metadata(member.name):
            continue
        if not member.isreg():  # links could point anywhere in (or outside) the archive
            raise DataError(f"{path}: member {member.name!r} is a link or special file, not a PNG file")
        if member.size > MAX_MEMBER_BYTES:
            raise DataError(f"{path}: member {member.name!r} is {member.size} bytes, too large for an image")
        try:
            data = archive.extractfile(member).read()  # type: ignore[union-attr]  # isreg() ⇒ a file object
        except _TAR_ERRORS as exc:
            raise DataError(
                f"{path}: member {member.name!r} cannot be read ({exc}); the archive is truncated or corrupt"
            ) from exc
        yield member.name, data
    _check_tar_end(archive, path)


def _check_tar_end(archive: tarfile.TarFile, path: Path) -> None:
    """tarfile stops silently at a missing or garbled header; a complete archive ends in zero blocks."""
    archive.fileobj.seek(archive.offset)  # one block back (a .tar.gz re-inflates; cache misses only)
    block = archive.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise DataError(
            f"{path}: tar archive is truncated or corrupt after byte {archive.offset} (no end-of-archive marker)"
        )
    while archive.fileobj.read(2**20):  # reach the gzip trailer so its CRC and length get checked
        pass


def decode_png_tar(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels from a .tar / .tar.gz of {number}_{label}.png files at any folder depth."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as archive:
            return _numbered(_tar_pngs(archive, path), str(path))
    except _TAR_ERRORS as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc})") from exc


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes and p.is_file() and not _is_metadata(p.relative_to(root).as_posix())
    )


def _read(path: Path, rel: str, where: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_MEMBER_BYTES:
            raise DataError(f"{where}: {rel!r} is {size} bytes, too large for an image")
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{where}: cannot read {rel!r} ({exc})") from exc


def decode_png_folder(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels from {number}_{label}.png files in a folder (subfolders included)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: is not a folder")
    rels = [(p, p.relative_to(path).as_posix()) for p in _files(path, (".png",))]
    return _numbered(((rel, _read(p, rel, str(path))) for p, rel in rels), str(path))


def _class_names(path: Path) -> list[str]:
    if not path.is_dir():
        raise DataError(f"{path}: is not a folder")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not _is_metadata(p.name))
    if not classes:
        raise DataError(f"{path}: has no class folders (expected {path}/<class name>/<image files>)")
    return classes


def decode_class_folders(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """ImageFolder layout root/<class>/…/*.png|jpg|jpeg|bmp; classes sorted by name, label = index."""
    path = Path(path)
    classes = _class_names(path)
    arrays: list[np.ndarray] = []
    names: list[str] = []
    labels: list[int] = []
    sizes = _SizeCheck(str(path))
    for index, name in enumerate(classes):
        files = _files(path / name, CLASS_FOLDER_EXTENSIONS)
        if not files:
            raise DataError(f"{path}: class folder {name!r} has no {'/'.join(CLASS_FOLDER_EXTENSIONS)} images")
        for file in files:
            rel = file.relative_to(path).as_posix()
            arrays.append(
                _decode_image(
                    _read(file, rel, str(path)),
                    f"{path}: {rel!r}",
                    ("PNG", "JPEG", "BMP"),
                    lambda size, rel=rel: sizes(size, rel),
                )
            )
            names.append(rel)
            labels.append(index)
    return _stack(arrays, names, str(path)), torch.tensor(labels, dtype=torch.int64), classes


# ---------------------------------------------------------------- checksums and cache


def source_checksum(path: Path) -> str:
    """sha256 of a file; for a folder, sha256 over sorted (relative path, file sha256) pairs."""
    path = Path(path)
    try:
        if path.is_file():
            return sha256_file(path)
        if not path.is_dir():
            raise DataError(f"{path}: does not exist")
        digest = hashlib.sha256()
        for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()):
            # NUL cannot occur in a path, so (path, hash) pairs cannot run into each other
            digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\0".encode())
        return digest.hexdigest()
    except OSError as exc:
        raise DataError(f"{path}: cannot read for checksum ({exc})") from exc


def _valid(result: Any) -> bool:
    """Shape/dtype sanity of a decoded (images, labels[, classes]) tuple."""
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        return False
    images, labels = result[0], result[1]
    if not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor)):
        return False
    ok = (
        images.dtype == torch.uint8
        and images.dim() == 4
        and images.shape[1] in (1, 3)
        and labels.dtype == torch.int64
        and labels.dim() == 1
        and len(labels) == len(images)
    )
    return ok and (len(result) == 2 or isinstance(result[2], list) and all(isinstance(c, str) for c in result[2]))


def _cache_file(cache_dir: Path, checksum: str, decode: Callable) -> Path:
    # The same folder can be read by two decoders with different results, so the decoder is in the key.
    return cache_dir / f"{checksum}.{decode.__name__}.v{CACHE_FORMAT}.pt"


def _read_cache(file: Path, checksum: str, decode: Callable) -> Decoded | None:
    if not file.is_file():
        return None
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 — a corrupt cache file fails in many ways (zip, pickle, EOF); only a cache
        return None
    if not (
        isinstance(payload, dict)
        and payload.get("checksum") == checksum
        and payload.get("decoder") == decode.__name__
        and _valid(payload.get("result"))
    ):
        return None
    return tuple(payload["result"])


def _write_cache(file: Path, checksum: str, decode: Callable, result: Decoded) -> None:
    """Atomic: a crash mid-write leaves a stray temp file, never a half-written cache entry."""
    payload = {"checksum": checksum, "decoder": decode.__name__, "result": list(result)}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, lambda handle: torch.save(payload, handle))
    except OSError as exc:  # an unwritable cache must not stop training; it only costs the next run time
        warnings.warn(f"could not write dataset cache {file}: {exc}", stacklevel=3)


def load_cached(path: Path, decode: Callable[[Path], Decoded], cache_dir: Path) -> tuple[Decoded, dict[str, str]]:
    """decode(path), or its cached result for a source with the same sha256.

    Returns (decoded tuple, {"sha256", "cache": "hit"|"miss", "cache_file"}).
    """
    path, cache_dir = Path(path), Path(cache_dir).expanduser()
    checksum = source_checksum(path)
    file = _cache_file(cache_dir, checksum, decode)
    result = _read_cache(file, checksum, decode)
    if result is not None:
        return result, {"sha256": checksum, "cache": "hit", "cache_file": str(file)}
    result = tuple(decode(path))
    if not _valid(result):
        raise DataError(f"{path}: {decode.__name__} returned malformed tensors")
    if source_checksum(path) != checksum:  # else we would file new contents under the old checksum
        raise DataError(f"{path}: changed while it was being read; try again")
    _write_cache(file, checksum, decode, result)
    return result, {"sha256": checksum, "cache": "miss", "cache_file": str(file)}


# ---------------------------------------------------------------- both splits

DECODERS: dict[str, Callable[[Path], Decoded]] = {
    "png_tar": decode_png_tar,
    "png_folder": decode_png_folder,
    "class_folders": decode_class_folders,
}


def _label_classes(
    train: torch.Tensor, test: torch.Tensor, test_path: Path
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Classes are the distinct training labels; labels become indices into them (0..K-1)."""
    values = torch.unique(train)  # sorted ascending
    unknown = sorted(set(torch.unique(test).tolist()) - set(values.tolist()))
    if unknown:
        raise DataError(f"{test_path}: test labels {unknown} never occur in the training split")
    return ([str(v) for v in values.tolist()], torch.searchsorted(values, train), torch.searchsorted(values, test))


def _check_same_classes(train: list[str], test: list[str], test_path: Path) -> None:
    if train != test:
        missing, extra = sorted(set(train) - set(test)), sorted(set(test) - set(train))
        raise DataError(
            f"{test_path}: class folders differ from the training split "
            f"(missing {missing or 'none'}, extra {extra or 'none'})"
        )


def _same_channels(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One split all grey and the other in colour: both in colour, the grey one repeated into three channels."""
    channels = max(train.shape[1], test.shape[1])
    return tuple(x.expand(-1, channels, -1, -1).contiguous() if x.shape[1] < channels else x for x in (train, test))


def load_image_splits(kind: str, train: Path, test: Path, cache_dir: Path) -> dict[str, Any]:
    """Decode (or load cached) train and test splits of one source kind into engine-ready tensors."""
    if kind not in DECODERS:
        raise DataError(f"unknown image source kind {kind!r}: expected one of {', '.join(KINDS)}")
    decode = DECODERS[kind]
    (train_out, train_info), (test_out, test_info) = (
        load_cached(Path(p), decode, Path(cache_dir)) for p in (train, test)
    )
    if kind == "class_folders":
        _check_same_classes(train_out[2], test_out[2], Path(test))
        classes, train_y, test_y = train_out[2], train_out[1], test_out[1]
    else:
        classes, train_y, test_y = _label_classes(train_out[1], test_out[1], Path(test))
    train_x, test_x = _same_channels(train_out[0], test_out[0])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{test}: images are {tuple(test_x.shape[2:])} pixels, training images are {tuple(train_x.shape[2:])}"
        )
    files = {
        split: {"path": str(Path(p)), "sha256": info["sha256"], "verified": "false", "cache": info["cache"]}
        for split, p, info in (("train", train, train_info), ("test", test, test_info))
    }
    return {
        "train_images": train_x,
        "train_labels": train_y,
        "test_images": test_x,
        "test_labels": test_y,
        "classes": classes,
        "files": files,
    }
