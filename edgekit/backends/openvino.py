"""OpenVINO on the CPU: ONNX -> IR; precision pinned (the CPU plugin otherwise picks bf16 on AMX): f32,
or bf16 where the artifact says so (an FP16 artifact for a CPU target with bf16, written in the IR's
``runtime_options``).

Device-side code as well (a camera's golden check and runtime load through it): Python 3.6+ syntax."""
from pathlib import Path
from typing import List, Optional

import numpy as np

from edgekit.backends.openvino_capi import CompiledModel
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
    """An artifact compiled for this CPU by OpenVINO's C API (:mod:`edgekit.backends.openvino_capi`: the
    ``openvino`` Python package is not imported), precision pinned as :func:`compile` wrote it."""

    backend = NAME

    def __init__(self, path: Path, threads: int, batch: Optional[int] = None, cache: Optional[Path] = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise EdgekitError("{}: model file not found".format(path))
        # never bf16 behind the user's back: only where the artifact was compiled to compute in it
        self.precision = precision_hint(path)
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": self.precision,
                  "PERFORMANCE_HINT": "LATENCY"}
        self.model = CompiledModel(path, config, batch, cache)
        self.input_shape = self.model.input_shape
        self.from_cache = self.model.from_cache        # imported from a compiled blob, not compiled now

    def infer(self, batch: np.ndarray) -> List[np.ndarray]:
        return self.model.infer(batch)

    def close(self) -> None:
        self.model.close()


def precision_hint(path: Path) -> str:
    """The IR's ``rt_info/runtime_options/INFERENCE_PRECISION_HINT`` (what :func:`compile` writes for bf16),
    else (and for an ONNX file) ``f32``."""
    from xml.etree.ElementTree import iterparse

    if path.suffix != ".xml":
        return "f32"
    within = []
    try:
        for event, element in iterparse(str(path), events=("start", "end")):
            if event == "start":
                within.append(element.tag)
                if within[1:] == ["rt_info", HINT[0], HINT[1]]:
                    return element.get("value") or "f32"
            else:
                within.pop()
                element.clear()
    except SyntaxError as exc:              # ElementTree's ParseError
        raise EdgekitError("{}: not an OpenVINO IR ({})".format(path, exc)) from None
    return "f32"


def load(path: Path, threads: int, batch: Optional[int] = None, cache: Optional[Path] = None) -> OpenVinoRunner:
    return OpenVinoRunner(path, threads, batch, cache)
