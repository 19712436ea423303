"""Inference backends, each one module with the same surface (Polygraphy-style loader + runner).

``compile(onnx_path, out_dir, precision) -> Path`` turns an ONNX model into what the backend
loads; ``load(path, threads, batch) -> Runner`` gives an object with ``infer(batch) -> logits``.
Backends import their runtime lazily, so a missing optional runtime only matters when used.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from edgekit.errors import EdgekitError

# name -> (module, python package that must be importable)
_BACKENDS = {
    "onnxruntime": ("edgekit.backends.onnxruntime", "onnxruntime"),
    "openvino": ("edgekit.backends.openvino", "openvino"),
}
DEVICE_ONLY = {"tensorrt"}  # built on the device from the portable kit (see stages/compile.py)


def backend_names() -> list[str]:
    return sorted(_BACKENDS) + sorted(DEVICE_ONLY)


def is_available(name: str) -> bool:
    if name in DEVICE_ONLY:
        return importlib.util.find_spec("tensorrt") is not None
    return name in _BACKENDS and importlib.util.find_spec(_BACKENDS[name][1]) is not None


def get_backend(name: str) -> ModuleType:
    if name not in _BACKENDS:
        raise EdgekitError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")
    module, package = _BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise EdgekitError(f"backend {name!r} needs the Python package {package!r}: pip install {package}")
    return importlib.import_module(module)
