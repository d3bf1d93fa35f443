"""Image-file sources: PNG tar archives / folders written from known tensors, decoded exactly and cached."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from reportgen.data import CLASS_NAMES
from reportgen.data.image_files import (
    decode_class_folders,
    decode_png_folder,
    decode_png_tar,
    load_cached,
    load_image_splits,
    source_checksum,
)
from reportgen.errors import DataError


def png_bytes(pixels: torch.Tensor, fmt: str = "PNG") -> bytes:
    """Encode a uint8 (1, H, W) or (H, W) tensor as an image file with PIL."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(pixels.shape[-2:]).numpy(), mode="L").save(buffer, format=fmt)
    return buffer.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def numbered_members(images: torch.Tensor, labels: torch.Tensor, folder: str = "train") -> list[tuple[str, bytes]]:
    """`{i:05d}_{label}.png`, every third inside a subfolder, written in shuffled order."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)).tolist()
    return [
        (f"{folder}/{'sub/' if i % 3 == 0 else ''}{i:05d}_{int(labels[i])}.png", png_bytes(images[i])) for i in order
    ]


def tiny(n: int = 6, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8), torch.arange(n) % 3


@pytest.fixture(scope="module")
def fashion() -> SimpleNamespace:
    """Fashion-MNIST-shaped splits (2,000 + 500 images of 28×28, ten classes) using every pixel value 0–255,
    so an encoder or decoder that rounds, clips or rescales anything shows up as a mismatch."""
    g = torch.Generator().manual_seed(0)
    splits = {
        split: (
            torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n,), generator=g),
        )
        for split, n in (("train", 2000), ("test", 500))
    }
    return SimpleNamespace(
        train_images=splits["train"][0],
        train_labels=splits["train"][1],
        test_images=splits["test"][0],
        test_labels=splits["test"][1],
    )


@pytest.fixture(scope="module")
def fashion_tars(fashion, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tars")
    return (
        write_tar(root / "train.tar", numbered_members(fashion.train_images, fashion.train_labels)),
        write_tar(root / "test.tar.gz", numbered_members(fashion.test_images, fashion.test_labels, "test"), "w:gz"),
    )


# ------------------------------------------------------------------ Fashion-MNIST-sized round trips


def test_png_tar_decodes_exact_pixels_and_labels_in_number_order(fashion, fashion_tars):
    images, labels = decode_png_tar(fashion_tars[0])
    assert images.dtype == torch.uint8 and images.shape == (2000, 1, 28, 28) and labels.dtype == torch.int64
    assert torch.equal(images, fashion.train_images) and torch.equal(labels, fashion.train_labels)
    images, labels = decode_png_tar(fashion_tars[1])  # .tar.gz
    assert torch.equal(images, fashion.test_images) and torch.equal(labels, fashion.test_labels)


def test_load_image_splits_caches_second_run(fashion, fashion_tars, tmp_path):
    cache = tmp_path / "cache"
    first = load_image_splits("png_tar", *fashion_tars, cache)
    second = load_image_splits("png_tar", *fashion_tars, cache)
    assert [f["cache"] for f in first["files"].values()] == ["miss", "miss"]
    assert [f["cache"] for f in second["files"].values()] == ["hit", "hit"]
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(first[key], second[key])
    assert torch.equal(second["train_images"], fashion.train_images)
    assert torch.equal(second["test_labels"], fashion.test_labels)
    assert second["classes"] == [str(d) for d in range(10)]
    assert second["files"]["train"] == {
        "path": str(fashion_tars[0]),
        "sha256": source_checksum(fashion_tars[0]),
        "verified": "false",
        "cache": "hit",
    }
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temp files behind

    # a hit is read from the cache file, never decoded again: pixels changed in the cache come back changed
    entries = sorted(cache.glob("*.pt"))
    assert len(entries) == 2
    for entry in entries:
        payload = torch.load(entry, weights_only=True)
        payload["result"][0] = 255 - payload["result"][0]
        torch.save(payload, entry)
    third = load_image_splits("png_tar", *fashion_tars, cache)
    assert [f["cache"] for f in third["files"].values()] == ["hit", "hit"]
    assert torch.equal(third["train_images"], 255 - fashion.train_images)
    assert torch.equal(third["test_images"], 255 - fashion.test_images)


def test_png_folder_and_class_folders_from_fashion(fashion, tmp_path):
    images, labels = fashion.test_images[:300], fashion.test_labels[:300]
    for name, data in numbered_members(images, labels, "pngs"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    got_images, got_labels = decode_png_folder(tmp_path / "pngs")
    assert torch.equal(got_images, images) and torch.equal(got_labels, labels)

    names = [c.replace("/", "-") for c in CLASS_NAMES["fashion-mnist"]]  # "T-shirt/top" is not a folder name
    for i, label in enumerate(labels.tolist()):
        folder = tmp_path / "classes" / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.png").write_bytes(png_bytes(images[i]))
    got_images, got_labels, classes = decode_class_folders(tmp_path / "classes")
    assert classes == sorted(names)
    expected = [(classes.index(names[int(y)]), i) for i, y in enumerate(labels)]  # class order, then file name
    order = [i for _, i in sorted(expected)]
    assert torch.equal(got_images, images[order])
    assert [classes[y] for y in got_labels.tolist()] == [names[int(labels[i])] for i in order]


# ------------------------------------------------------------------ cache behaviour


def test_cache_hit_skips_decoding_and_corrupt_cache_is_rewritten(tmp_path):
    images, labels = tiny()
    archive = write_tar(tmp_path / "train.tar", numbered_members(images, labels))
    calls: list[Path] = []

    def counting_decode(path: Path):
        calls.append(path)
        return decode_png_tar(path)

    (got, info) = load_cached(archive, counting_decode, tmp_path / "cache")
    assert info["cache"] == "miss" and info["sha256"] == source_checksum(archive) and len(calls) == 1
    (again, info) = load_cached(archive, counting_decode, tmp_path / "cache")
    assert info["cache"] == "hit" and len(calls) == 1
    assert torch.equal(again[0], images) and torch.equal(again[1], labels) and torch.equal(got[0], again[0])

    cache_file = Path(info["cache_file"])
    for garbage in (b"not a torch file", cache_file.read_bytes()[:200]):
        cache_file.write_bytes(garbage)
        (recovered, info) = load_cached(archive, counting_decode, tmp_path / "cache")
        assert info["cache"] == "miss" and torch.equal(recovered[0], images)
        assert load_cached(archive, counting_decode, tmp_path / "cache")[1]["cache"] == "hit"
    assert len(calls) == 3


def test_cache_entry_for_other_contents_is_not_trusted(tmp_path):
    images, labels = tiny()
    a = write_tar(tmp_path / "a.tar", numbered_members(images, labels))
    b = write_tar(tmp_path / "b.tar", numbered_members(images[:4], labels[:4]))
    _, info_a = load_cached(a, decode_png_tar, tmp_path / "cache")
    _, info_b = load_cached(b, decode_png_tar, tmp_path / "cache")
    Path(info_a["cache_file"]).write_bytes(Path(info_b["cache_file"]).read_bytes())  # b's tensors under a's key
    result, info = load_cached(a, decode_png_tar, tmp_path / "cache")
    assert info["cache"] == "miss" and len(result[1]) == 6


def test_changed_source_gets_a_new_checksum(tmp_path):
    images, labels = tiny()
    archive = write_tar(tmp_path / "train.tar", numbered_members(images, labels))
    load_cached(archive, decode_png_tar, tmp_path / "cache")
    write_tar(archive, numbered_members(images[:5], labels[:5]))
    result, info = load_cached(archive, decode_png_tar, tmp_path / "cache")
    assert info["cache"] == "miss" and len(result[1]) == 5


def test_folder_checksum_covers_names_and_contents(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.png").write_bytes(b"1")
    first = source_checksum(tmp_path / "d")
    (tmp_path / "d" / "sub" / "a.png").rename(tmp_path / "d" / "sub" / "b.png")
    renamed = source_checksum(tmp_path / "d")
    (tmp_path / "d" / "sub" / "b.png").write_bytes(b"2")
    assert len({first, renamed, source_checksum(tmp_path / "d")}) == 3
    with pytest.raises(DataError, match="does not exist"):
        source_checksum(tmp_path / "missing")


# ------------------------------------------------------------------ malformed archives


def test_bad_member_name_is_named(tmp_path):
    images, labels = tiny()
    members = numbered_members(images, labels) + [("train/sub/img_7.png", png_bytes(images[0]))]
    archive = write_tar(tmp_path / "train.tar", members)
    with pytest.raises(DataError, match=r"train\.tar: 'train/sub/img_7\.png' is not named \{number\}_\{label\}"):
        decode_png_tar(archive)


@pytest.mark.parametrize(
    "payload, message",
    [
        ("jpeg", "is JPEG, expected PNG"),
        ("garbage", "cannot decode image"),
        ("truncated", "cannot decode image"),
    ],
)
def test_non_png_or_corrupt_png_member(tmp_path, payload, message):
    images, labels = tiny()
    bad = {
        "jpeg": png_bytes(images[0], "JPEG"),
        "garbage": b"hello, not an image",
        "truncated": png_bytes(images[0])[:40],
    }[payload]
    archive = write_tar(tmp_path / "train.tar", numbered_members(images, labels) + [("x/00099_1.png", bad)])
    with pytest.raises(DataError, match=rf"train\.tar: 'x/00099_1\.png': .*{message}"):
        decode_png_tar(archive)


def test_images_of_different_sizes(tmp_path):
    images, labels = tiny()
    big = png_bytes(torch.zeros(10, 12, dtype=torch.uint8))
    archive = write_tar(tmp_path / "train.tar", numbered_members(images, labels) + [("00099_1.png", big)])
    with pytest.raises(DataError, match=r"'00099_1\.png' is 12x10 pixels, but .* is 8x8"):
        decode_png_tar(archive)


def test_duplicate_numbers_are_ambiguous(tmp_path):
    images, _labels = tiny()
    archive = write_tar(
        tmp_path / "train.tar", [("a/00001_1.png", png_bytes(images[0])), ("b/00001_2.png", png_bytes(images[1]))]
    )
    with pytest.raises(DataError, match="same number 1"):
        decode_png_tar(archive)


@pytest.mark.parametrize("cut", ["mid_member", "member_boundary", "gzip"])
def test_truncated_tar(tmp_path, cut):
    images, labels = tiny(n=6, size=28)
    members = numbered_members(images, labels)
    whole = write_tar(tmp_path / "whole.tar", members).read_bytes()
    if cut == "gzip":
        data, name = gzip.compress(whole)[:-300], "train.tar.gz"
    else:
        # each member is one 512-byte header plus its data padded to 512 bytes
        sizes = [512 + -(-len(d) // 512) * 512 for _, d in members]
        boundary = sum(sizes[:3])
        data, name = (
            (whole[:boundary], "train.tar") if cut == "member_boundary" else (whole[: boundary - 700], "train.tar")
        )
    truncated = tmp_path / name
    truncated.write_bytes(data)
    with pytest.raises(DataError, match=r"train\.tar(\.gz)?: .*(truncated|corrupt|not a readable tar)"):
        decode_png_tar(truncated)


def test_corrupt_and_empty_archives(tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"\x89 definitely not a tar archive " * 40)
    with pytest.raises(DataError, match="garbage.tar: not a readable tar archive"):
        decode_png_tar(garbage)
    no_pngs = write_tar(tmp_path / "empty.tar", [("README.txt", b"hi"), ("train/._00001_1.png", b"mac junk")])
    with pytest.raises(DataError, match="empty.tar: contains no images"):
        decode_png_tar(no_pngs)
    with pytest.raises(DataError, match="nothing.tar: contains no images"):
        decode_png_tar(write_tar(tmp_path / "nothing.tar", []))


def test_link_member_is_refused(tmp_path):
    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("00001_1.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="'00001_1.png' is a link"):
        decode_png_tar(archive)


# ------------------------------------------------------------------ folders and splits


def write_class_tree(root: Path, classes: dict[str, int], size: int = 8) -> Path:
    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            (root / name / f"{i:03d}.png").write_bytes(
                png_bytes(torch.full((size, size), c * 10 + i, dtype=torch.uint8))
            )
    return root


def test_class_folders_sorted_like_imagefolder(tmp_path):
    root = write_class_tree(tmp_path / "train", {"zebra": 2, "apple": 1, "mango": 3})
    (root / "apple" / "notes.txt").write_text("ignored")
    (root / "mango" / "extra.BMP").write_bytes(png_bytes(torch.full((8, 8), 99, dtype=torch.uint8), "BMP"))
    (root / ".ipynb_checkpoints").mkdir()
    images, labels, classes = decode_class_folders(root)
    assert classes == ["apple", "mango", "zebra"]
    assert labels.tolist() == [0, 1, 1, 1, 1, 2, 2]
    assert images[:, 0, 0, 0].tolist() == [10, 20, 21, 22, 99, 0, 1]  # per class: files in name order


def test_class_folder_splits_must_match(tmp_path):
    write_class_tree(tmp_path / "train", {"cat": 2, "dog": 2})
    write_class_tree(tmp_path / "test_ok", {"cat": 1, "dog": 1})
    write_class_tree(tmp_path / "test_missing", {"cat": 1})
    write_class_tree(tmp_path / "test_extra", {"cat": 1, "dog": 1, "eel": 1})
    out = load_image_splits("class_folders", tmp_path / "train", tmp_path / "test_ok", tmp_path / "cache")
    assert out["classes"] == ["cat", "dog"] and out["test_labels"].tolist() == [0, 1]
    with pytest.raises(DataError, match=r"test_missing: class folders differ .*missing \['dog'\]"):
        load_image_splits("class_folders", tmp_path / "train", tmp_path / "test_missing", tmp_path / "cache")
    with pytest.raises(DataError, match=r"test_extra: class folders differ .*extra \['eel'\]"):
        load_image_splits("class_folders", tmp_path / "train", tmp_path / "test_extra", tmp_path / "cache")


def test_empty_class_folder(tmp_path):
    root = write_class_tree(tmp_path / "train", {"cat": 1})
    (root / "dog").mkdir()
    with pytest.raises(DataError, match="class folder 'dog' has no"):
        decode_class_folders(root)


def test_png_folder_splits_remap_sparse_labels(tmp_path):
    images, _ = tiny()
    for split, labels in (("train", [3, 7, 7, 3, 9, 9]), ("test", [9, 3, 9, 3, 3, 3])):
        (tmp_path / split).mkdir()
        for i, label in enumerate(labels):
            (tmp_path / split / f"{i}_{label}.png").write_bytes(png_bytes(images[i]))
    out = load_image_splits("png_folder", tmp_path / "train", tmp_path / "test", tmp_path / "cache")
    assert out["classes"] == ["3", "7", "9"]
    assert out["train_labels"].tolist() == [0, 1, 1, 0, 2, 2] and out["test_labels"].tolist() == [2, 0, 2, 0, 0, 0]
    assert torch.equal(out["train_images"], images)
    (tmp_path / "test" / "99_5.png").write_bytes(png_bytes(images[0]))
    with pytest.raises(DataError, match=r"test labels \[5\] never occur in the training split"):
        load_image_splits("png_folder", tmp_path / "train", tmp_path / "test", tmp_path / "cache")


def test_split_image_sizes_must_agree_and_kind_is_checked(tmp_path):
    small, labels = tiny(size=8)
    large, _ = tiny(size=10)
    train = write_tar(tmp_path / "train.tar", numbered_members(small, labels))
    test = write_tar(tmp_path / "test.tar", numbered_members(large, labels))
    with pytest.raises(DataError, match=r"test\.tar: images are \(10, 10\) pixels"):
        load_image_splits("png_tar", train, test, tmp_path / "cache")
    with pytest.raises(DataError, match="unknown image source kind 'zip'"):
        load_image_splits("zip", train, test, tmp_path / "cache")
