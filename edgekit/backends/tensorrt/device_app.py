"""``edgekit-device.pyz``: the device-side code as one zipapp, written into every TensorRT kit.

A Jetson runs it with the Python its JetPack ships (``python3 edgekit-device.pyz build``): no pip,
no torch, no edgekit install; numpy, TensorRT's bindings and pycuda or cuda-python are all it needs.
:data:`DEVICE_MODULES` is the whole of it; ``tests/test_device_side.py`` holds those files to
Python 3.6 (vermin) and checks that importing them pulls in nothing else.
"""
from __future__ import annotations

import shutil
import tempfile
import zipapp
from pathlib import Path

import edgekit

APP = "edgekit-device.pyz"
MIN_PYTHON = (3, 6)            # JetPack 4.6's Python: the oldest a supported Jetson ships
DEVICE_MODULES = (
    "__init__.py", "errors.py", "artifacts.py", "timing.py", "backends/__init__.py",
    "deploy/__init__.py", "deploy/keys.py", "deploy/bundle.py", "deploy/slots.py",   # a camera's bundles
    "line/__init__.py", "line/golden.py", "line/slot_runner.py",                     # the golden check
    "backends/onnxruntime.py", "backends/openvino.py",            # what a CPU camera's slot runs
    *(f"backends/tensorrt/{name}.py" for name in (
        "__init__", "version", "engine", "cuda", "runner", "builder", "calibration_cache", "onnx_support",
        "kit_build", "jetson", "bench", "device_cli")),
)
ENTRY = "edgekit.backends.tensorrt.device_cli:main"


def device_files() -> list[Path]:
    """The device-side source files of this edgekit."""
    root = Path(edgekit.__file__).parent
    return [root / name for name in DEVICE_MODULES]


def write_app(dest: Path) -> Path:
    """Zip the device-side modules into ``dest`` (runnable as ``python3 dest``)."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in zip(DEVICE_MODULES, device_files()):
            target = Path(tmp) / "edgekit" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        module, function = ENTRY.split(":")
        # zipapp's own main= would drop the exit status: the program's 2 on an error must reach the shell
        (Path(tmp) / "__main__.py").write_text(f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n")
        zipapp.create_archive(tmp, dest, interpreter="/usr/bin/env python3")
    return dest
