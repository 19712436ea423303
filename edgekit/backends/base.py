"""What every runner offers; pre- and post-processing stay outside, shared by all backends."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import onnx

from edgekit.errors import EdgekitError


class Runner(Protocol):
    backend: str
    input_shape: tuple[int, ...]   # including the batch dimension the runner was built for

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        """float32 NCHW (N == input_shape[0]) -> the model's float32 outputs, in graph order."""
        ...


def read_onnx(path: Path | str) -> onnx.ModelProto:
    """Parse an ONNX file; a missing, empty, truncated or non-ONNX file is one error line naming it."""
    p = Path(path)
    if not p.is_file():
        raise EdgekitError(f"{p}: ONNX file not found")
    if p.stat().st_size == 0:
        raise EdgekitError(f"{p}: empty file, not an ONNX model")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf's DecodeError, or onnx's own for external data
        reason = (str(exc).splitlines() or [exc.__class__.__name__])[0][:200]
        raise EdgekitError(f"{p}: not a valid ONNX model ({exc.__class__.__name__}: {reason})") from None
    if not model.graph.node:
        raise EdgekitError(f"{p}: not a valid ONNX model (no graph: is it an ONNX file at all?)")
    return model


def onnx_input_shape(model: onnx.ModelProto, path: object = "model") -> tuple[int, ...]:
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise EdgekitError(f"{path}: expected one graph input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims):
        raise EdgekitError(f"{path}: input {inputs[0].name!r} has a dynamic shape; edgekit exports static shapes")
    return tuple(d.dim_value for d in dims)


def with_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A copy of a static-shape model whose first input/output dimension is ``batch``.

    Valid for graphs that carry no batch-size constants (our exports flatten with ``Flatten``).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for value in list(out.graph.input) + list(out.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = batch
    del out.graph.value_info[:]
    return out
