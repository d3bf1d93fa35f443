"""The data's input shape as the built-in models' constructor arguments.

A registered model function (or model class) whose signature names `input_shape` is given the data's
(channels, height, width) by `registry.create_model`; the built-in ones turn it into `in_channels` and
`image_size` (convolutional nets) or `in_features` (MLPs). An argument written in the model reference
(`lenet5?in_channels=1`) wins over the data's shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from reportgen.errors import ModelError

GREY = (1, 28, 28)  # Fashion-MNIST's shape: what a built-in model is built for when no data says otherwise


def image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, height, width), or one line for a shape that is not an image's."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ModelError(f"input shape {shape}: the built-in models take images, channels×height×width (e.g. 3×32×32)")
    return shape  # type: ignore[return-value]


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from one side of a square image or from both."""
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[-1]))


def sides(size: int | Sequence[int], after: Callable[[int], int]) -> tuple[int, int]:
    """Height and width of a feature map, each computed from the input's by `after`."""
    height, width = pair(size)
    return after(height), after(width)


def conv_arguments(input_shape: Sequence[int], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`in_channels` and `image_size` of a convolutional model from the data's shape, under the caller's own."""
    channels, height, width = image_shape(input_shape)
    return {"in_channels": channels, "image_size": (height, width), **kwargs}


def flat_arguments(input_shape: Sequence[int], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`in_features` of a fully connected model: every pixel of every channel (C×H×W; any shape's product)."""
    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) < 1:
        raise ModelError(f"input shape {shape}: expected positive sizes, e.g. 1×28×28")
    return {"in_features": math.prod(shape), **kwargs}
