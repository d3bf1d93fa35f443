"""Seed studies across runs (issue 35 item 6): the subsets are drawn with [data] seed, fixed and separate from
the training seed, so `run --seed 1` and `run --seed 2` train and test on the same images and combine into
one model with mean ± std, while the training seed still sets initialisation and batch order."""

from __future__ import annotations

import json

import pytest
from conftest import LOCAL_RUN, write_idx_dataset

from reportgen.report import combine
from reportgen.run.archive_reading import ArchiveReader


def _run(cli, idx, run_id: str, *extra: str) -> ArchiveReader:
    code, _out, err = cli(
        "run", "--models", "mlp", "--dataset", "mnist", "--data-dir", idx, "--epochs", "1",
        "--train-subset", "300", "--test-subset", "80", "--run-id", run_id, "--format", "md", *LOCAL_RUN, *extra,
    )  # fmt: skip
    assert code == 0, err
    return ArchiveReader(idx.parent / "runs" / run_id)


@pytest.mark.slow
def test_two_training_seeds_share_their_images_and_combine_into_one_seed_study(workdir, cli):
    idx = write_idx_dataset(workdir / "idx", n_train=600, n_test=150)
    one, two = _run(cli, idx, "s1", "--seed", "1"), _run(cli, idx, "s2", "--seed", "2")
    assert one.read("spec")["data"]["seed"] == two.read("spec")["data"]["seed"] == 0  # recorded, fixed
    assert combine.test_set_checksum(one) == combine.test_set_checksum(two)
    assert combine.data_checksum(one, "train") == combine.data_checksum(two, "train")
    # the training seed still matters: different initialisation, so different predictions
    predictions = [(run.trial_dir(run.trial_ids()[0]) / "predictions.csv").read_text() for run in (one, two)]
    assert predictions[0] != predictions[1]
    code, _out, err = cli("render", one.path, two.path, "--format", "md")
    assert code == 0, err
    summary = json.loads((workdir / "output" / "combined-s1-s2" / "summary.json").read_text("utf-8"))
    (aggregate,) = summary["seed_aggregates"]
    assert aggregate["model"] == "mlp" and aggregate["seeds"] == 2


@pytest.mark.slow
def test_the_data_seed_draws_other_images_and_old_runs_keep_their_first_training_seed(workdir, cli):
    idx = write_idx_dataset(workdir / "idx", n_train=600, n_test=150)
    base = _run(cli, idx, "d0")
    other = workdir / "other.toml"
    other.write_text(
        f'[data]\ndataset = "mnist"\ndata_dir = "{idx}"\ntrain_subset = 300\ntest_subset = 80\nseed = 5\n'
        '[train]\nepochs = 1\n[[models]]\nname = "mlp"\n',
        "utf-8",
    )
    code, _out, err = cli("run", other, "--run-id", "d5", "--format", "md", *LOCAL_RUN)
    assert code == 0, err
    assert combine.test_set_checksum(ArchiveReader(workdir / "runs" / "d5")) != combine.test_set_checksum(base)
    # a run archived before [data] seed existed drew its subsets with its first training seed: read as such
    from reportgen.experiment import recorded_data

    assert recorded_data({"data": {"dataset": "mnist"}, "train": {"seeds": [7, 8]}}) == ({"dataset": "mnist"}, 7)
