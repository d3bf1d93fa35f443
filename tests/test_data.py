import gzip

import pytest
import torch
from conftest import requires_fashion, write_idx, write_idx_dataset

from reportgen.data.datasets import FASHION_MNIST_DIR, load_dataset, parse_idx
from reportgen.errors import DataError


@requires_fashion
def test_fashion_mnist_from_debian_package_is_verified():
    data = load_dataset("fashion-mnist", train_subset=1000, test_subset=200)
    assert data.train_images.shape == (1000, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_labels.shape == (200,) and data.num_classes == 10
    assert all(f["verified"] == "true" for f in data.files.values())
    assert 0.25 < data.mean < 0.32 and 0.3 < data.std < 0.4  # statistics of this training subset


def test_subsets_are_reproducible_per_seed(idx_dir):
    a, b, other = (
        load_dataset("mnist", data_dir=idx_dir, train_subset=100, test_subset=20, seed=seed) for seed in (3, 3, 4)
    )
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train_images, other.train_images)  # the seed, not the file order, picks the subset


@pytest.mark.parametrize("gz", [False, True])
def test_local_idx_dir_for_mnist(tmp_path, gz):
    write_idx_dataset(tmp_path, n_train=120, n_test=30, gz=gz)
    data = load_dataset("mnist", data_dir=tmp_path, mean=0.1307, std=0.3081)
    assert len(data.train_labels) == 120 and len(data.test_labels) == 30
    assert data.mean == 0.1307 and data.files["train_images"]["verified"] == "false"


def test_truncated_idx_names_the_file(tmp_path):
    write_idx_dataset(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: IDX header promises .* truncated"):
        load_dataset("mnist", data_dir=tmp_path)


def test_wrong_magic_is_rejected(tmp_path):
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"\x00\x00\x08\x01" + b"\x00" * 20, tmp_path / "x", 3)


def test_missing_file_and_missing_dir(tmp_path):
    write_idx_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


@requires_fashion
def test_fashion_file_with_wrong_checksum_is_rejected(tmp_path):
    for path in FASHION_MNIST_DIR.glob("*.gz"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed: same format, different data
    labels.unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: sha256 of contents is"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_labels_beyond_the_classes_are_rejected(tmp_path):
    write_idx_dataset(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", torch.full((50,), 12))
    with pytest.raises(DataError, match="labels go up to 12"):
        load_dataset("mnist", data_dir=tmp_path)
