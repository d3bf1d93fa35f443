import pytest
from torch import nn

from reportgen.errors import ModelError
from reportgen.models.registry import create_model, list_models, parse_model_ref


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_seed_model_is_registered():
    assert {
        "lenet5",
        "lenet5_regularized",
        "lenet5_256",
        "lenet5_c5",
        "mlp",
        "mlp_deep",
        "mlp_lenet_sized",
        "cnn_1x1",
        "fmnist_cnn1",
        "fmnist_cnn2",
        "fmnist_cnn3",
    } <= set(list_models())
    assert list_models("lenet5_*") == ["lenet5_256", "lenet5_c5", "lenet5_regularized"]


def test_default_mlp_is_within_one_percent_of_lenet5():
    lenet, mlp = count(create_model("lenet5")), count(create_model("mlp_lenet_sized"))
    assert lenet == 61_706
    assert abs(mlp - lenet) / lenet < 0.01


def test_unknown_name_lists_close_matches():
    with pytest.raises(ModelError, match="did you mean lenet5"):
        create_model("lenet")


def test_module_class_reference_with_kwargs():
    ref = parse_model_ref("reportgen.models.mlp:MLP?hidden=[32,16]&dropout=0.1")
    assert ref.kwargs == {"hidden": [32, 16], "dropout": 0.1}
    model = create_model(ref)
    assert count(model) == (784 + 1) * 32 + (32 + 1) * 16 + (16 + 1) * 10


def test_none_kwargs_do_not_override_defaults():
    assert count(create_model("lenet5_regularized", dropout=None)) == 62_158


@pytest.mark.parametrize(
    "text, message",
    [
        ("models.nope:Net", "cannot import module"),
        ("reportgen.models.mlp:Nope", "has no attribute"),
        ("lenet5?dropout", "expected key=value"),
        ("lenet5?bogus=1", "bad constructor arguments"),
    ],
)
def test_bad_references_raise_one_clear_error(text, message):
    with pytest.raises(ModelError, match=message):
        create_model(text)
