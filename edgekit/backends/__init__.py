"""Inference backends, each one module with the same surface (Polygraphy-style loader + runner).

``compile(onnx_path, out_dir, precision) -> Path`` turns an ONNX model into what the backend
loads; ``load(path, threads, batch) -> Runner`` gives an object with ``infer(batch) -> outputs``.
TensorRT builds through :mod:`edgekit.backends.tensorrt.builder` (it needs the target and, for
implicit INT8, a calibration cache) and loads through the same ``load``.
Backends import their runtime lazily, so a missing optional runtime only matters when used.
"""
from typing import List
import importlib
from types import ModuleType

from edgekit.errors import EdgekitError

# name -> (module, python package that must be importable)
_BACKENDS = {
    "onnxruntime": ("edgekit.backends.onnxruntime", "onnxruntime"),
    "openvino": ("edgekit.backends.openvino", "openvino"),
    "tensorrt": ("edgekit.backends.tensorrt", "tensorrt"),
}
HOST_BACKENDS = ("onnxruntime", "openvino")  # run on this machine's CPU


def backend_names() -> List[str]:
    return sorted(_BACKENDS)


def is_available(name: str) -> bool:
    return name in _BACKENDS and importlib.util.find_spec(_BACKENDS[name][1]) is not None


def get_backend(name: str) -> ModuleType:
    if name not in _BACKENDS:
        raise EdgekitError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")
    module, package = _BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise EdgekitError(f"backend {name!r} needs the Python package {package!r}"
                           + (" (on a Jetson it comes with JetPack)" if name == "tensorrt" else f": pip install {package}"))
    return importlib.import_module(module)
