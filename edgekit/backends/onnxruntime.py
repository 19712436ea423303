"""ONNX Runtime on the CPU: runs the ONNX file as is (INT8 uses the U8-activation Q/DQ encoding).

Device-side code as well (a camera's golden check and runtime load through it): Python 3.6+; the
``onnx`` package is imported only to change a model's batch size."""
import re
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

from edgekit.errors import EdgekitError

NAME = "onnxruntime"
INT8_ENCODING = "u8"       # x86 kernels want unsigned activations (DESIGN.md: S8 runs slower than FP32)
ARTIFACT = "model.onnx"


def compile(onnx_path: Path, out_dir: Path, precision: str) -> Path:
    target = Path(out_dir) / ARTIFACT
    shutil.copyfile(str(onnx_path), str(target))
    return target


def _reason(exc: Exception) -> str:
    """ORT's message without its error-code prefix and C++ source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return re.sub(r"^\S+\.(cc|h|cpp):\d+ .*?\) (?=[A-Z])", "", text)[:200]


def _explain_unreadable(path: Path) -> None:
    """An empty, truncated or non-ONNX file named as such (where the ``onnx`` package is installed)."""
    try:
        from edgekit.backends.base import read_onnx
    except ImportError:
        return
    read_onnx(path)


class OrtRunner:
    backend = NAME

    def __init__(self, path: Path, threads: int, batch: Optional[int] = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EdgekitError("{}: ONNX file not found".format(path))
        source = str(path)   # ORT reads the file itself; only a new batch size needs the model parsed here
        shape = None
        if batch:
            from edgekit.backends.base import onnx_input_shape, read_onnx, with_batch

            model = read_onnx(path)
            shape = onnx_input_shape(model, path)
            if batch != shape[0]:
                model = with_batch(model, batch)
                shape = (batch,) + tuple(shape[1:])
            source = model.SerializeToString()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            _explain_unreadable(path)
            raise EdgekitError("{}: ONNX Runtime cannot load it ({})".format(path, _reason(exc))) from exc
        first = self.session.get_inputs()[0]
        if shape is None:
            if not all(isinstance(d, int) for d in first.shape):
                raise EdgekitError("{}: input {!r} has a dynamic shape; edgekit exports static shapes".format(
                    path, first.name))
            shape = tuple(first.shape)
        self.input_name = first.name
        self.input_shape = tuple(shape)

    def infer(self, batch: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {self.input_name: batch})


def load(path: Path, threads: int, batch: Optional[int] = None) -> OrtRunner:
    return OrtRunner(path, threads, batch)
