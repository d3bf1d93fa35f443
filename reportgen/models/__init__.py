"""Built-in models from the course reports; importing this package registers them all."""
from . import cnn, lenet, mlp

__all__ = ["cnn", "lenet", "mlp"]
