"""Issue #26: published models by name through their zoos' own registries (torchvision always, timm when
installed), untrained — nothing is downloaded — and their MACs against the figures the zoo publishes."""

from __future__ import annotations

import pytest
from conftest import write_idx_dataset
from torchvision.models import get_model_weights

import reportgen
from reportgen.errors import ModelError
from reportgen.measure.macs import check_macs_claim, count_macs, macs_claim_note
from reportgen.measure.params import audit_model
from reportgen.models.registry import create_model, model_code, parse_model_ref

# resnet18 at 224: BatchNorm after the stem (64·112·112), 4 in layer1 (64·56·56), 5 in layer2..4 (with the
# downsample's) at 128·28·28, 256·14·14, 512·7·7: one multiply-add per element, which torchvision leaves out
RESNET18_BATCHNORM = 64 * 112 * 112 + 4 * 64 * 56 * 56 + 5 * (128 * 28 * 28 + 256 * 14 * 14 + 512 * 7 * 7)
RESNET18_PUBLISHED = 1_814_073_344  # torchvision's figure, as quoted in the issue (its metadata rounds: 1.814 G)


@pytest.fixture(scope="module")
def resnet18_macs():
    return count_macs(create_model("torchvision:resnet18"), (3, 224, 224))


@pytest.mark.slow
def test_resnet18_is_torchvision_figure_plus_its_batchnorm_elements(resnet18_macs):
    assert RESNET18_BATCHNORM == 2_483_712 and resnet18_macs.batchnorm_macs == RESNET18_BATCHNORM
    assert resnet18_macs.total == RESNET18_PUBLISHED + RESNET18_BATCHNORM
    published = get_model_weights("resnet18").DEFAULT.meta["_ops"]  # local metadata, no download
    assert round(RESNET18_PUBLISHED / 1e9, 3) == published
    assert resnet18_macs.flop_counter.checked_macs == RESNET18_PUBLISHED  # every conv and the fc, BatchNorm unseen


def test_the_published_claim_is_accepted_with_the_batchnorm_difference_said(resnet18_macs):
    assert check_macs_claim(resnet18_macs, RESNET18_PUBLISHED) is None
    assert macs_claim_note(resnet18_macs, RESNET18_PUBLISHED) == (
        "claimed 1,814,073,344 MACs = ours 1,816,557,056 without the 2,483,712 BatchNorm multiply-adds (one per "
        "element at inference), which published figures leave out: accepted"
    )
    assert check_macs_claim(resnet18_macs, 2 * RESNET18_PUBLISHED).endswith(
        "(that is FLOPs without BatchNorm: 2 × MACs)"
    )


@pytest.mark.slow
def test_mobilenet_v3_small_against_its_published_ops():
    macs = count_macs(create_model("torchvision:mobilenet_v3_small"), (3, 224, 224))
    published = get_model_weights("mobilenet_v3_small").DEFAULT.meta["_ops"]
    assert round((macs.total - macs.batchnorm_macs) / 1e9, 3) == published == 0.057
    assert macs.total - macs.batchnorm_macs == macs.flop_counter.checked_macs  # convs and linears: all seen


def test_constructor_arguments_reach_the_zoo():
    model = create_model(parse_model_ref("torchvision:resnet18?num_classes=10"))
    assert model.fc.out_features == 10
    assert model_code(parse_model_ref("torchvision:resnet18"))["package"].startswith("torchvision ")


@pytest.mark.parametrize(
    "reference, message",
    [
        ("torchvision:resnet1", "unknown torchvision model 'resnet1': did you mean resnet18, resnet152, resnet101?"),
        ("torchvison:resnet18", "did you mean the torchvision zoo (torchvision:name)?"),
        ("torchvision:resnet18?weights=DEFAULT", "'weights' is not accepted — zoo models are built untrained"),
        ("resnet18", "unknown model 'resnet18'"),
    ],
)
def test_a_wrong_zoo_reference_is_one_line(reference, message):
    with pytest.raises(ModelError) as error:
        create_model(parse_model_ref(reference))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_model_for_other_channels_is_one_line_with_exit_2(cli):
    code, out, err = cli("params", "torchvision:resnet18", "--input", "1x28x28")
    assert code == 2 and out == ""
    assert err == (
        "reportgen: error: model torchvision:resnet18 takes 3x224x224 images, the data is 1x28x28: "
        "1 channel(s), not 3\n"
    )


@pytest.mark.slow
def test_a_smaller_image_runs_and_a_failing_one_says_what_the_model_was_published_for():
    assert audit_model(create_model("torchvision:resnet18?num_classes=10"), (3, 32, 32)).total == 11_181_642
    with pytest.raises(ModelError, match=r"for input 3x16x16 \(it was published for 3x224x224\): "):
        audit_model(create_model("torchvision:vit_b_16"), (3, 16, 16), name="torchvision:vit_b_16")


@pytest.mark.slow
def test_timm_by_name_when_installed():
    pytest.importorskip("timm")
    macs = count_macs(create_model("timm:resnet18?num_classes=10"), (3, 224, 224))
    assert macs.total == RESNET18_PUBLISHED + RESNET18_BATCHNORM - 512 * (1000 - 10)  # torchvision's, 10 classes
    with pytest.raises(ModelError, match="unknown timm model 'resnet_18': did you mean"):
        create_model("timm:resnet_18")
    with pytest.raises(ModelError, match=r"the data is 1x28x28: 1 channel\(s\), not 3 \(timm: pass in_chans=1\)"):
        audit_model(create_model("timm:resnet18"), (1, 28, 28), name="timm:resnet18")


def test_compare_names_a_zoo_model_and_refuses_it_on_data_of_other_channels(tmp_path):
    write_idx_dataset(tmp_path / "idx", n_train=20, n_test=10)
    with pytest.raises(
        ModelError, match=r"^model resnet18 takes 3x224x224 images, the data is 1x28x28: 1 channel\(s\), not 3$"
    ):
        reportgen.compare(
            {"resnet18": "torchvision:resnet18?num_classes=10"},
            dataset="mnist",
            data_dir=str(tmp_path / "idx"),
            epochs=1,
            runs_dir=tmp_path / "runs",
            output_dir=tmp_path / "output",
            pdf=False,
            executor="local",
        )
    assert not (tmp_path / "runs" / "resnet18").exists()


@pytest.mark.slow
def test_the_published_figure_through_the_cli_is_accepted_with_its_note(cli):
    code, out, err = cli("params", "torchvision:resnet18", "--input", "3x224x224", "--expect-macs", "1814073344")
    assert code == 0 and err == ""
    assert "torchvision:resnet18: claimed 1,814,073,344 MACs = ours 1,816,557,056 without the 2,483,712" in out
