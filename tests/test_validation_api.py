"""The public names of `import reportgen` resolve, and what the README shows them doing works through them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import reportgen


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_every_public_name_resolves_in_a_fresh_interpreter():
    # a fresh process: a module imported by an earlier test must not hide a lazy export that points nowhere
    code = "import reportgen; print(all(getattr(reportgen, n) is not None for n in reportgen.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


def test_register_model_through_the_package_registers_a_model_name():
    from torch import nn

    from reportgen.models.registry import create_model, list_models

    @reportgen.register_model
    def tiny_linear_for_api_test(classes: int = 10) -> nn.Module:
        """One linear layer."""
        return nn.Sequential(nn.Flatten(), nn.Linear(784, classes))

    assert "tiny_linear_for_api_test" in list_models()
    assert isinstance(create_model("tiny_linear_for_api_test?classes=3")[1], nn.Linear)
