"""Colour (3-channel) images end to end: RGB class folders and CIFAR-10 through torchvision's own loader, the
built-in models and the audit on the data's shape, RGB augmentation, colour galleries, a grey model refused.

The data is made here: class folders of 3×32×32 images in which each class is a square of its own colour on
noise (PNG for training, JPEG for testing), and a small CIFAR-10 folder in torchvision's pickle layout.
"""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reportgen.data.augment import Augment
from reportgen.data.datasets import load_dataset
from reportgen.errors import DataError
from reportgen.spec import parse_spec

SIZE = 32
# One colour per class, far apart in RGB so that a model sees them after one short epoch.
COLOURS = [
    (230, 25, 25),
    (25, 200, 25),
    (25, 25, 230),
    (230, 230, 25),
    (230, 25, 230),
    (25, 230, 230),
    (245, 130, 20),
    (130, 20, 245),
    (245, 245, 245),
    (120, 120, 120),
]
CLASSES = [f"c{k}" for k in range(len(COLOURS))]
TRAIN_PER_CLASS, TEST_PER_CLASS = 30, 10
RUN = ["--epochs", "1", "--batch-size", "16", "--lr", "0.01", "--executor", "local", "--no-pdf"]


def colour_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """(32, 32, 3) uint8: dark noise with a 16×16 square of the class's colour at a random place."""
    pixels = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    top, left = rng.integers(0, SIZE - 16, 2)
    pixels[top : top + 16, left : left + 16] = COLOURS[label]
    return pixels


def write_class_folders(root: Path, per_class: int, suffix: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(colour_image(label, rng), "RGB").save(root / name / f"{i:03d}{suffix}", quality=95)
    return root


@pytest.fixture(scope="module")
def rgb_folders(tmp_path_factory) -> tuple[Path, Path]:
    """300 training PNGs and 100 test JPEGs, 3×32×32, ten classes."""
    root = tmp_path_factory.mktemp("rgb")
    return (
        write_class_folders(root / "train", TRAIN_PER_CLASS, ".png", seed=0),
        write_class_folders(root / "test", TEST_PER_CLASS, ".jpg", seed=1),
    )


def class_folder_spec(folder: Path, train: Path, test: Path, models: list[str]) -> Path:
    spec = folder / "rgb.toml"
    entries = "".join(f'[[models]]\nname = "{name}"\n' for name in models)
    spec.write_text(
        entries
        + textwrap.dedent(f"""
            [data]
            dataset = "custom"
            format = "class_folders"
            train = "{train}"
            test = "{test}"
            [augment]
            crop = 4
            flip = 0.5
        """),
        "utf-8",
    )
    return spec


def trial_record(run: Path, model: str) -> dict:
    (trial,) = run.glob(f"trials/*-{model}/trial.json")
    return json.loads(trial.read_text("utf-8"))


def final_accuracy(run: Path, model: str) -> float:
    (metrics,) = run.glob(f"trials/*-{model}/metrics.json")
    return json.loads(metrics.read_text("utf-8"))[-1]["test_acc"]


@pytest.fixture(scope="module")
def rgb_run(rgb_folders, tmp_path_factory) -> tuple[Path, Path, int, str]:
    """lenet5 and mlp trained one epoch on the colour class folders (with crop and flip), through the CLI."""
    from reportgen.cli import main

    folder = tmp_path_factory.mktemp("rgb-run")
    spec = class_folder_spec(folder, *rgb_folders, ["lenet5", "mlp"])
    code = main(["run", str(spec), *RUN, "--run-id", "rgb", "--runs-dir", str(folder / "runs"),
                 "--output-dir", str(folder / "output")])  # fmt: skip
    return folder / "runs" / "rgb", folder / "output" / "rgb", code


@pytest.mark.slow  # trains and renders
def test_rgb_class_folders_train_lenet5_and_mlp_above_chance(rgb_run):
    run, _output, code = rgb_run
    assert code == 0
    data = json.loads((run / "data.json").read_text("utf-8"))
    assert data["input_shape"] == [3, SIZE, SIZE] and data["classes"] == CLASSES
    assert len(data["mean"]) == 3 and len(data["std"]) == 3  # one per channel
    for model in ("lenet5", "mlp"):
        assert trial_record(run, model)["config"]["augment"] == "crop=4,flip=0.5"
        assert final_accuracy(run, model) > 0.3, model  # chance is 0.1 (ten classes, 100 test images)


@pytest.mark.slow  # trains and renders
def test_audit_counts_the_three_channel_first_layer(rgb_run):
    run, _output, _code = rgb_run
    lenet = trial_record(run, "lenet5")["audit"]
    conv1 = lenet["layers"][0]
    assert lenet["input_shape"] == [3, SIZE, SIZE]
    assert conv1["formula"] == "(5·5·3 + 1)·6 = 456" and conv1["weights"] + conv1["bias"] == 3 * 5 * 5 * 6 + 6
    # the paper's 32×32 input needs no padding: conv1 gives 28×28, and the classifier still starts from 16·5·5
    assert conv1["output_shape"][-2:] == [28, 28] and lenet["total"] == 61_706 + 2 * 150 == lenet["torchinfo_total"]
    mlp = trial_record(run, "mlp")["audit"]
    first = next(layer for layer in mlp["layers"] if layer["type"] == "Linear")
    assert first["weights"] == 3 * SIZE * SIZE * 64 and mlp["total"] == (3072 + 1) * 64 + (64 + 1) * 10


@pytest.mark.slow  # trains and renders
def test_galleries_show_the_images_in_colour(rgb_run):
    _run, output, _code = rgb_run
    (sheet, *_rest) = sorted((output / "figures").glob("gallery-*-wrong-*.png"))
    pixels = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    # blue, cyan, magenta and violet squares: no grey tile has them, nor do the captions (dark grey and red)
    blue = pixels[:, :, 2] - np.maximum(pixels[:, :, 0], pixels[:, :, 1]) > 100
    assert blue.mean() > 0.002


def test_grey_model_on_rgb_data_is_refused_in_one_line(rgb_folders, workdir, cli):
    (workdir / "greynet.py").write_text(
        textwrap.dedent("""
            import torch.nn as nn


            class GreyNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 6, 5)
                    self.fc = nn.Linear(6 * 28 * 28, 10)

                def forward(self, x):
                    return self.fc(self.conv1(x).flatten(1))
        """),
        "utf-8",
    )
    spec = class_folder_spec(workdir, *rgb_folders, ["greynet.py:GreyNet"])
    code, _out, err = cli("run", spec, *RUN)
    assert code == 2 and err.count("\n") == 1, err
    assert "greynet.py:GreyNet" in err and "1-channel (grey)" in err and "3x32x32, 3-channel (RGB)" in err
    assert "in_channels=3" in err and not (workdir / "runs").exists()


def test_colour_and_grey_images_of_one_folder_load_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    for name, label in (("a", 0), ("b", 1)):
        (tmp_path / "train" / name).mkdir(parents=True)
        Image.fromarray(colour_image(label, rng), "RGB").save(tmp_path / "train" / name / "colour.png")
        Image.fromarray(colour_image(label, rng)[:, :, 0], "L").save(tmp_path / "train" / name / "grey.png")
    data = load_dataset("custom", format="class_folders", train=tmp_path / "train", test=tmp_path / "train")
    assert data.input_shape == (3, SIZE, SIZE)
    grey = data.train_images[1]  # a/grey.png follows a/colour.png
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    expected = data.train_images.double().div(255).mean((0, 2, 3))
    assert data.mean == pytest.approx(expected.tolist(), abs=1e-4)


def test_grey_images_saved_as_rgb_stay_one_channel(tmp_path):
    """Channels follow the pixels, not the file's mode: Fashion-MNIST-like images saved as RGB PNGs train as
    the same 1×H×W tensors as the grey files would."""
    rng = np.random.default_rng(0)
    grey = {name: rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8) for name in ("a", "b")}
    for name, pixels in grey.items():
        (tmp_path / name).mkdir()
        Image.fromarray(np.stack([pixels] * 3, axis=2), "RGB").save(tmp_path / name / "0.png")
    data = load_dataset("custom", format="class_folders", train=tmp_path, test=tmp_path)
    assert data.input_shape == (1, SIZE, SIZE) and isinstance(data.mean, float)
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(np.stack([grey["a"], grey["b"]])))


def test_crop_and_flip_move_every_channel_alike():
    base = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    images = torch.cat([base, 2 * base, 3 * base], dim=1)
    out = Augment(crop=2, flip=0.5)(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and not torch.equal(out, images)
    assert torch.allclose(out[:, 1], 2 * out[:, 0]) and torch.allclose(out[:, 2], 3 * out[:, 0])
    flipped = Augment(flip=1.0)(images, torch.Generator().manual_seed(1))
    assert torch.equal(flipped, images.flip(-1))


def test_spec_augment_crop_and_flip():
    spec = parse_spec({"models": [{"name": "lenet5"}], "augment": {"crop": 4, "flip": 0.5}}, "s.toml")
    assert spec.train["augment"] == ["crop=4,flip=0.5"]
    with pytest.raises(Exception, match="augment.crop"):
        parse_spec({"models": [{"name": "lenet5"}], "augment": {"crop": 2.5}}, "s.toml")


# ------------------------------------------------------------------ CIFAR-10 through torchvision


def write_fake_cifar(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """torchvision's CIFAR-10 layout with a few images per batch: dicts of uint8 rows (R plane, G, B) and labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(k) % 10 for k in rng.permutation(per_batch)]
        rows = np.stack([colour_image(y, rng).transpose(2, 0, 1).reshape(-1) for y in labels])
        batch = {"batch_label": name, "labels": labels, "data": rows, "filenames": [f"{i}.png" for i in labels]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES, "num_vis": 3072}))
    return root


@pytest.mark.slow  # imports torchvision: seconds on a busy 2-core machine
def test_cifar10_fake_folder_loads_through_torchvision(tmp_path):
    root = write_fake_cifar(tmp_path)
    data = load_dataset("cifar10", data_dir=root)
    assert data.train_images.shape == (100, 3, SIZE, SIZE) and data.test_images.shape == (20, 3, SIZE, SIZE)
    assert data.classes == CLASSES and len(data.mean) == 3
    first = pickle.loads((root / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert torch.equal(data.train_images[0], torch.from_numpy(first["data"][0].reshape(3, SIZE, SIZE)))
    assert data.train_labels[:20].tolist() == first["labels"]
    assert {split: info["verified"] for split, info in data.files.items()} == {
        "train": "false",  # not the published files: loaded, and said so
        "test": "false",
        "meta": "false",
    }
    assert load_dataset("cifar10", data_dir=root / "cifar-10-batches-py").files == data.files


@pytest.mark.slow  # trains and renders
def test_cifar10_run_with_lenet5(tmp_path, workdir, cli):
    root = write_fake_cifar(tmp_path / "cifar")
    code, _out, err = cli(
        "run", "--dataset", "cifar10", "--data-dir", root, "--models", "lenet5", *RUN, "--run-id", "c"
    )
    assert code == 0, err
    assert trial_record(workdir / "runs" / "c", "lenet5")["audit"]["total"] == 62_006


class _Touch:
    """A pickle that, unpickled by plain pickle.load, creates a file: what a tampered batch could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_cifar10_batch_naming_other_code_is_refused_unrun(tmp_path):
    root = write_fake_cifar(tmp_path)
    marker = tmp_path / "ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps({"data": _Touch(marker), "labels": []}))
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 batch file \(it names pathlib"):
        load_dataset("cifar10", data_dir=root)
    assert not marker.exists()


def test_cifar10_missing_folder_says_the_layout(tmp_path, workdir, cli):
    code, _out, err = cli("run", "--dataset", "cifar10", "--data-dir", tmp_path, *RUN)
    assert code == 2 and err.count("\n") == 1 and "cifar-10-batches-py" in err and "data_batch_1" in err
