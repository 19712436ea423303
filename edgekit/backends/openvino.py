"""OpenVINO on the CPU: ONNX -> IR; precision pinned (the CPU plugin otherwise picks bf16 on AMX): f32,
or bf16 where the artifact says so (an FP16 artifact for a CPU target with bf16, written in the IR's
``runtime_options``).

Device-side code as well (a camera's golden check and runtime load through it): Python 3.6+ syntax."""
from pathlib import Path
from typing import List, Optional

import numpy as np

from edgekit.errors import EdgekitError

NAME = "openvino"
INT8_ENCODING = "s8"       # the portable symmetric Q/DQ ONNX becomes FakeQuantize in the IR
ARTIFACT = "model.xml"


HINT = ["runtime_options", "INFERENCE_PRECISION_HINT"]


def compile(onnx_path: Path, out_dir: Path, precision: str, bf16: bool = False) -> Path:
    """ONNX (or an IR already quantized by NNCF, ``.xml``) -> ``model.xml`` + ``model.bin``; ``bf16``: the
    artifact computes in bf16 (for an FP16 artifact on a CPU with AVX512-BF16 or AMX)."""
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path)) if Path(onnx_path).suffix == ".xml" else ov.convert_model(str(onnx_path))
    if bf16:
        model.set_rt_info("bf16", HINT)
    target = Path(out_dir) / ARTIFACT
    # FP16 artifacts keep FP16 weights; FP32/INT8 keep FP32 tensors so nothing is rounded silently.
    ov.save_model(model, str(target), compress_to_fp16=(precision == "fp16"))
    return target


class OpenVinoRunner:
    backend = NAME

    def __init__(self, path: Path, threads: int, batch: Optional[int] = None) -> None:
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError with a multi-line frontend report
            raise EdgekitError("{}: OpenVINO cannot read it ({})".format(
                path, str(exc).strip().splitlines()[0][:200])) from exc
        shape = tuple(model.input(0).get_shape())
        if batch and batch != shape[0]:
            model.reshape({model.input(0).get_any_name(): [batch] + list(shape[1:])})
            shape = (batch,) + tuple(shape[1:])
        # never bf16 behind the user's back: only where the artifact was compiled to compute in it
        self.precision = model.get_rt_info(HINT).astype(str) if model.has_rt_info(HINT) else "f32"
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": self.precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.outputs = len(self.compiled.outputs)
        self.input_shape = shape

    def infer(self, batch: np.ndarray) -> List[np.ndarray]:
        self.request.infer({0: batch})
        return [self.request.get_output_tensor(i).data.copy() for i in range(self.outputs)]


def load(path: Path, threads: int, batch: Optional[int] = None) -> OpenVinoRunner:
    return OpenVinoRunner(path, threads, batch)
