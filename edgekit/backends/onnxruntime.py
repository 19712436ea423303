"""ONNX Runtime on the CPU: runs the ONNX file as is (INT8 uses the U8-activation Q/DQ encoding)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgekit.backends.base import onnx_input_shape, read_onnx, with_batch
from edgekit.errors import EdgekitError

NAME = "onnxruntime"
INT8_ENCODING = "u8"       # x86 kernels want unsigned activations (DESIGN.md: S8 runs slower than FP32)
ARTIFACT = "model.onnx"


def compile(onnx_path: Path, out_dir: Path, precision: str) -> Path:
    target = Path(out_dir) / ARTIFACT
    shutil.copyfile(onnx_path, target)
    return target


def _reason(exc: Exception) -> str:
    """ORT's message without its error-code prefix and C++ source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return re.sub(r"^\S+\.(cc|h|cpp):\d+ .*?\) (?=[A-Z])", "", text)[:200]


class OrtRunner:
    backend = NAME

    def __init__(self, path: Path, threads: int, batch: int | None = None) -> None:
        model = read_onnx(path)
        shape = onnx_input_shape(model, path)
        if batch and batch != shape[0]:
            model = with_batch(model, batch)
            shape = (batch, *shape[1:])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise EdgekitError(f"{path}: ONNX Runtime cannot load it ({_reason(exc)})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = shape

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: batch})


def load(path: Path, threads: int, batch: int | None = None) -> OrtRunner:
    return OrtRunner(path, threads, batch)
