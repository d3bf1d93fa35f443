"""Built-in models from the course reports; importing this package registers them all."""
from . import cnn, lenet, mlp  # noqa: F401  (imported for their @register_model side effect)

__all__ = ["cnn", "lenet", "mlp"]
