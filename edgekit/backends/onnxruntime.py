"""ONNX Runtime on the CPU: runs the ONNX file as is (INT8 uses the U8-activation Q/DQ encoding)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgekit.backends.base import onnx_input_shape, with_batch

NAME = "onnxruntime"
INT8_ENCODING = "u8"       # x86 kernels want unsigned activations (DESIGN.md: S8 runs slower than FP32)
ARTIFACT = "model.onnx"


def compile(onnx_path: Path, out_dir: Path, precision: str) -> Path:
    target = Path(out_dir) / ARTIFACT
    shutil.copyfile(onnx_path, target)
    return target


class OrtRunner:
    backend = NAME

    def __init__(self, path: Path, threads: int, batch: int | None = None) -> None:
        model = onnx.load(str(path))
        shape = onnx_input_shape(model, path)
        if batch and batch != shape[0]:
            model = with_batch(model, batch)
            shape = (batch, *shape[1:])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = shape

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def load(path: Path, threads: int, batch: int | None = None) -> OrtRunner:
    return OrtRunner(path, threads, batch)
