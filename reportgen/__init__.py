"""reportgen: train small vision models under identical settings and write the comparison report.

The Python API (see reportgen.api) is loaded on first use, so `import reportgen.spec` stays light:

    import reportgen
    report = reportgen.compare({"LeNet-5": LeNet5, "MLP": MLP}, epochs=10)
    reportgen.audit(LeNet5())
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Report", "__version__", "audit", "compare", "register_model"]

# name → the module defining it (a module that moves must be updated here: tests/test_validation_api.py checks)
_EXPORTS = {"compare": "api", "audit": "api", "Report": "api", "register_model": "models.registry"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f"reportgen.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'reportgen' has no attribute {name!r}")
