"""OpenVINO on the CPU: ONNX -> IR; precision pinned (the CPU plugin otherwise picks bf16 on AMX)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from edgekit.errors import EdgekitError

NAME = "openvino"
INT8_ENCODING = "s8"       # the portable symmetric Q/DQ ONNX becomes FakeQuantize in the IR
ARTIFACT = "model.xml"


def compile(onnx_path: Path, out_dir: Path, precision: str) -> Path:
    model = ov.convert_model(str(onnx_path))
    target = Path(out_dir) / ARTIFACT
    # FP16 artifacts keep FP16 weights; FP32/INT8 keep FP32 tensors so nothing is rounded silently.
    ov.save_model(model, str(target), compress_to_fp16=(precision == "fp16"))
    return target


class OpenVinoRunner:
    backend = NAME

    def __init__(self, path: Path, threads: int, batch: int | None = None) -> None:
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError with a multi-line frontend report
            raise EdgekitError(f"{path}: OpenVINO cannot read it ({str(exc).strip().splitlines()[0][:200]})") from exc
        shape = tuple(model.input(0).get_shape())
        if batch and batch != shape[0]:
            model.reshape({model.input(0).get_any_name(): [batch, *shape[1:]]})
            shape = (batch, *shape[1:])
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",   # never bf16 behind the user's back
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.outputs = len(self.compiled.outputs)
        self.input_shape = shape

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: batch})
        return [self.request.get_output_tensor(i).data.copy() for i in range(self.outputs)]


def load(path: Path, threads: int, batch: int | None = None) -> OpenVinoRunner:
    return OpenVinoRunner(path, threads, batch)
