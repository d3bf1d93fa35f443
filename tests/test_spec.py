import re
from pathlib import Path

import pytest
from conftest import one_error_line

from reportgen.errors import SpecError
from reportgen.spec import load_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, "utf-8")
    return path


MODELS = '[[models]]\nname = "lenet5"\n[[models]]\nname = "mlp"\n'


def test_embedded_default_is_the_course_assignment():
    spec = load_spec()
    assert [m.ref.target for m in spec.models] == ["lenet5", "mlp_lenet_sized", "lenet5_regularized"]
    assert spec.data.dataset == "fashion-mnist"
    trials = spec.trials()
    assert len(trials) == 3 and {t.config.epochs for t in trials} == {10}
    assert len({(t.config.lr, t.config.batch_size, t.config.seed, t.config.optimizer) for t in trials}) == 1


def test_sweep_expands_models_times_settings_times_seeds(tmp_path):
    spec = load_spec(
        write(tmp_path, MODELS + "[train]\nlr = [0.1, 0.01]\nbatch_size = [32, 64, 128]\nseeds = [0, 1]\n")
    )
    trials = spec.trials()
    assert len(trials) == 2 * 2 * 3 * 2
    assert len({t.trial_id for t in trials}) == len(trials)
    assert spec.swept_keys() == ["batch_size", "lr", "seed"]


@pytest.mark.parametrize(
    "body, message",
    [
        (MODELS + "[train]\nepoch = 3\n", "unknown key 'train.epoch'"),
        (MODELS + '[train]\nepochs = "ten"\n', "key 'train.epochs': expected an integer"),
        (MODELS + "[train]\nepochs = 2.5\n", "key 'train.epochs': expected an integer"),
        (MODELS + "[train]\nlr = -1\n", "key 'train.lr': expected a number"),
        (MODELS + '[train]\noptimizer = "sgdd"\n', "key 'train.optimizer': expected one of sgd, adam"),
        (MODELS + '[train]\nloss = ["mse"]\n', "key 'train.loss': expected one of cross_entropy"),
        (MODELS + '[train]\nprecision = "fp16"\n', "key 'train.precision': expected one of fp32, bf16, got 'fp16'"),
        (MODELS + "[train]\nmomentum = 1.0\n", "key 'train.momentum': expected a number in [0, 0.999], got 1.0"),
        (MODELS + "[train]\nseed = -1\n", "key 'train.seed': expected an integer in [0, 2147483647], got -1"),
        (MODELS + "[train]\nseeds = [1, 2.5]\n", "key 'train.seeds': expected an integer in [0, 2147483647]"),
        (MODELS + '[data]\ndataset = "cifar"\n', "key 'data.dataset': expected one of fashion-mnist, mnist"),
        ("colour = 1\n" + MODELS, "unknown key 'colour'"),
        (MODELS + "colour = 1\n", "unknown key 'models[1].colour'"),
        ("[train]\nepochs = 1\n", "key 'models': expected a non-empty array"),
        ('[[models]]\nname = "lenet5"\nbase = "nope"\n', "key 'models[0].base'"),
        ("[[models\n", "invalid TOML"),
    ],
)
def test_bad_specs_name_file_key_and_expectation(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.toml")


def test_overrides_apply_before_validation():
    spec = load_spec(None, {"train.epochs": 2, "models": [{"name": "mlp"}]})
    assert spec.train["epochs"] == [2] and [m.label for m in spec.models] == ["mlp"]
    with pytest.raises(SpecError, match="train.batch_size"):
        load_spec(None, {"train.batch_size": 0})


def test_settings_come_from_one_source():
    """TrainConfig's fields and their metadata drive validation, sweeps, report columns, heatmap axes and
    display names: every field is covered, and a value outside a field's declared range or choices is
    refused with that range or those choices in the message."""
    import dataclasses

    from reportgen.report.i18n import load_catalogue
    from reportgen.settings import DISPLAY_NAMES, HEATMAP_AXES, REPORTED, SETTINGS, SWEEPABLE, TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert list(SETTINGS) == names and sorted(REPORTED) == sorted(names)
    assert set(SWEEPABLE) | {"seed", "augment"} == set(names) and set(HEATMAP_AXES) <= set(SWEEPABLE)
    # the English catalogue: every display name from the settings (plus option values written as people write them)
    assert load_catalogue("en").items() >= DISPLAY_NAMES.items() and set(names) <= load_catalogue("ko").keys()
    assert sorted(s.column for s in SETTINGS.values()) == list(range(len(names)))  # one column each, no gaps
    axes = [s.axis for s in SETTINGS.values() if s.axis is not None]
    assert len(set(axes)) == len(axes) == len(HEATMAP_AXES)  # distinct priorities: the heatmap's axes are defined
    for name in SWEEPABLE:
        setting = SETTINGS[name]
        if setting.choices:
            bad_values, expected = ["nope"], ", ".join(setting.choices)
        else:
            bad_values, expected = [setting.low - 1, setting.high * 10 + 1], f"[{setting.low:g}, {setting.high:g}]"
        for bad in bad_values:
            with pytest.raises(SpecError, match=f"train.{name}") as error:
                load_spec(None, {"models": [{"name": "mlp"}], "train": {name: [getattr(TrainConfig(), name), bad]}})
            assert f"expected {'one of ' if setting.choices else ''}" in str(error.value)
            assert expected in str(error.value) and repr(bad) in str(error.value)


def test_every_training_setting_has_a_run_flag_that_overrides_it(workdir, cli):
    """The run command's flags come from TrainConfig's fields too: each setting (but the augmentation
    table) has a flag of its own type whose value reaches the spec, and a value out of the setting's range
    or choices is refused with the spec's own one-line message before anything is written."""
    from reportgen.cli import _overrides, build_parser
    from reportgen.settings import SETTINGS, TrainConfig

    parser = build_parser()
    defaults = TrainConfig()
    for name, setting in SETTINGS.items():
        if name == "augment":
            continue
        flag = "--" + name.replace("_", "-")
        value = setting.choices[-1] if setting.choices else getattr(defaults, name) or setting.high
        needs = []  # a setting that has an effect only beside another's value gets that value too
        if setting.only_with:
            other, allowed = setting.only_with
            needs = ["--" + other.replace("_", "-"), allowed[0]]
        if name == "patience":  # early stopping decides on a validation split
            needs = ["--validation", "0.1"]
        args = parser.parse_args(["run", flag, str(value), *needs])
        spec = load_spec(None, _overrides(args))
        chosen = spec.seeds if name == "seed" else spec.train[name]
        assert list(chosen) == [value], (flag, chosen)
        bad = "nope" if setting.choices else str(setting.high * 10 + 1)
        code, _out, err = cli("run", flag, bad, "--models", "mlp")
        line = one_error_line(err)
        assert code == 2 and line.startswith(f"reportgen: error: {flag} (spec key 'train.") and bad in line, (flag, err)
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()


def test_reading_a_spec_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, reportgen.spec, reportgen.settings; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "False"


def test_a_setting_without_effect_under_the_chosen_optimizer_is_refused(tmp_path, workdir, cli):
    """Momentum is used by SGD and RMSprop only: given with Adam it would be shown in the report but never
    trained with, so the spec is refused — in a file (naming the key), a sweep that pairs it with Adam, and
    from the command line (naming the flag); a model's own SGD table may have it."""
    adam = "[train]\noptimizer = 'adam'\nmomentum = 0.9\n"
    with pytest.raises(SpecError, match=r"key 'train.momentum': 0.9 has no effect with optimizer 'adam'"):
        load_spec(write(tmp_path, MODELS + adam))
    sweep = "[train]\noptimizer = ['sgd', 'adamw']\nmomentum = [0.0, 0.5]\n"
    with pytest.raises(SpecError, match=r"0.5 has no effect with optimizer 'adamw' \(momentum is used by"):
        load_spec(write(tmp_path, MODELS + sweep))
    own = '[[models]]\nname = "mlp"\n[[models]]\nname = "lenet5"\ntrain = {optimizer = "sgd", momentum = 0.9}\n'
    spec = load_spec(write(tmp_path, own))
    assert [t.config.momentum for t in spec.trials()] == [0.0, 0.9]
    code, _out, err = cli("run", "--models", "mlp", "--momentum", "0.9")
    assert code == 2 and one_error_line(err).startswith("reportgen: error: --momentum (spec key 'train.momentum'): 0.9")
    code, _out, err = cli("run", "--models", "mlp", "--momentum", "0.9", "--optimizer", "adam", "--epochs", "0")
    assert code == 2 and "--epochs (spec key 'train.epochs')" in one_error_line(err)
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()
