"""Built-in models from the course reports; importing this package registers them all."""
from reportgen.models import cnn, lenet, mlp

__all__ = ["cnn", "lenet", "mlp"]
