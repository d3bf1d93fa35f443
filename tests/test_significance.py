"""Honest comparisons: McNemar with known p-values, lint flags on real runs, seed aggregates."""

import math
from dataclasses import asdict

import pytest
from conftest import FAST, requires_fashion, write_idx_dataset

from reportgen.report.findings import review_trials
from reportgen.report.significance import fashion_benchmarks, mcnemar, seed_aggregates
from reportgen.report.summary import TrialSummary
from reportgen.train import TrainConfig


def test_mcnemar_exact_binomial_known_p_value():
    # 10 images only A gets right, 2 only B gets right, 88 both right: two-sided exact p = 2·P(X ≤ 2 | 12, ½)
    labels = [0] * 100
    a = [0] * 10 + [1] * 2 + [0] * 88
    b = [1] * 10 + [0] * 2 + [0] * 88
    result = mcnemar(labels, a, b)
    assert (result["only_a"], result["only_b"]) == (10, 2)
    assert result["method"] == "exact binomial"
    assert result["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)


def test_mcnemar_chi_squared_known_p_value():
    labels = [1] * 200
    a = [1] * 40 + [0] * 20 + [1] * 140
    b = [0] * 40 + [1] * 20 + [1] * 140
    result = mcnemar(labels, a, b)
    statistic = (abs(40 - 20) - 1) ** 2 / 60
    assert result["statistic"] == pytest.approx(statistic)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(statistic / 2)))  # χ²(1) survival
    assert result["p_value"] < 0.05


def test_mcnemar_identical_predictions():
    assert mcnemar([0, 1], [0, 1], [0, 1])["p_value"] == 1.0


def summary(label, test_accs, train_loss=None, loss="cross_entropy", seed=0, status="complete"):
    epochs = [
        {
            "epoch": i + 1,
            "train_loss": (train_loss or [1.0 - 0.1 * i] * len(test_accs))[i],
            "train_acc": acc,
            "test_loss": 1.0,
            "test_acc": acc,
            "seconds": 1.0,
        }
        for i, acc in enumerate(test_accs)
    ]
    config = asdict(TrainConfig(epochs=len(epochs), loss=loss, seed=seed))
    return TrialSummary(f"00{seed}-{label}", label, "mlp", config, status, epochs, {"total": 1, "without_bias": 1})


def test_chance_level_and_cross_loss_lints():
    # BCE against cross-entropy: values on different scales (nll on log-probabilities would be the same scale)
    trials = [summary("stuck", [0.10, 0.11, 0.1135]), summary("good", [0.8, 0.85], loss="bce_with_logits")]
    codes = {(w.code, w.trial_id) for w in review_trials(trials, 10, settings_identical=True)}
    assert ("chance", "000-stuck") in codes
    assert ("cross_loss", "") in codes
    assert not any(trial == "000-good" for code, trial in codes if code == "chance")


def test_loss_that_never_decreases_and_settings_that_differ():
    trials = [summary("flat", [0.5, 0.5, 0.5], train_loss=[1.0, 1.2, 1.1])]
    codes = {w.code for w in review_trials(trials, 10, settings_identical=False)}
    assert {"no_decrease", "settings_differ"} <= codes


def test_seed_aggregates_mean_std_and_interval():
    trials = [summary("m", [0.80], seed=0), summary("m", [0.82], seed=1), summary("m", [0.84], seed=2)]
    (row,) = seed_aggregates(trials)
    assert row["seeds"] == 3 and row["mean"] == pytest.approx(0.82) and row["std"] == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2)
    assert row["ci_low"] == pytest.approx(0.82 - half) and row["ci_high"] == pytest.approx(0.82 + half)


@requires_fashion
def test_published_fashion_benchmarks_are_read_from_the_debian_package():
    rows = fashion_benchmarks()
    assert any(r["model"] == "2 Conv+pooling" and r["accuracy"] == 0.916 for r in rows)


def test_diverging_adam_trial_is_flagged_while_siblings_complete(workdir, cli):
    import json

    spec = workdir / "sweep.toml"
    spec.write_text('[[models]]\nname = "lenet5"\n[train]\noptimizer = "adam"\nlr = [10.0, 0.001]\n')
    data = write_idx_dataset(workdir / "idx", n_train=1500, n_test=300)
    code, out, err = cli("run", spec, *FAST, "--dataset", "mnist", "--data-dir", data, "--run-id", "sweep", "--no-pdf")
    assert code == 0, err
    summary_json = json.loads((workdir / "output" / "sweep" / "summary.json").read_text())
    states = {row["lr"]: row["status"] for row in summary_json["comparison"]}
    assert states == {10.0: "diverged", 0.001: "complete"}
    assert [w["code"] for w in summary_json["warnings"]] == ["diverged"]
    assert "diverged" in out + err
    good = next(r for r in summary_json["comparison"] if r["lr"] == 0.001)
    assert len(summary_json["epochs"][good["trial_id"]]) == 2 and good["final_test_acc"] > 0.5


@pytest.mark.parametrize("k, n", [(0, 1), (3, 10), (5, 10), (12, 24), (1, 20), (7, 7), (0, 24)])
def test_exact_binomial_p_matches_scipy(k, n):
    from scipy import stats

    from reportgen.report.significance import _exact_binomial_p

    assert _exact_binomial_p(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, abs=1e-12)


@pytest.mark.parametrize("only_a, only_b", [(30, 15), (20, 20), (40, 2), (13, 12)])
def test_mcnemar_chi_squared_p_matches_scipy(only_a, only_b):
    from scipy import stats

    labels = [0] * (only_a + only_b + 5)
    pred_a = [0] * only_a + [1] * only_b + [0] * 5
    pred_b = [1] * only_a + [0] * only_b + [0] * 5
    result = mcnemar(labels, pred_a, pred_b)
    assert result["method"] == "chi-squared, continuity corrected"
    expected = stats.chi2.sf((abs(only_a - only_b) - 1) ** 2 / (only_a + only_b), 1)
    assert result["p_value"] == pytest.approx(expected, rel=1e-12, abs=1e-300)
