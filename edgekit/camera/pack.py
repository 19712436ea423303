"""``edgekit-device.pyz``: the camera package as one zipapp, written into every device kit and uploaded by
``edgekit flash`` to every camera it flashes.

A camera runs it with the Python its OS ships (``python3 edgekit-device.pyz run --install DIR --source 0``;
JetPack 4.6's 3.6, JetPack 5's 3.8): no pip, no torch, no edgekit install. It needs numpy and OpenCV (JetPack
ships both), ``cryptography`` for the slot commands, and the slot's runtime: TensorRT's bindings with pycuda or
cuda-python, OpenVINO or ONNX Runtime. :data:`DEVICE_MODULES` is the whole of it; ``tests/test_device_side.py``
holds those files to Python 3.6 (vermin), checks that importing them pulls in nothing else, and runs the app
under real CPython 3.6 and 3.8. This module itself is workstation-side (it writes the zip).
"""
import shutil
import tempfile
import zipapp
from pathlib import Path
from typing import List

import edgekit
from edgekit.backends.tensorrt.kit_build import APP  # noqa: F401 - the name a kit and a camera give it

MIN_PYTHON = (3, 6)            # JetPack 4.6's Python: the oldest a supported Jetson ships
WORKSTATION_ONLY = ("camera/pack.py",)
DEVICE_MODULES = (
    "__init__.py", "errors.py", "artifacts.py", "timing.py", "backends/__init__.py",
    "backends/onnxruntime.py", "backends/openvino.py", "backends/openvino_capi.py",   # a CPU slot's runtimes
    *("backends/tensorrt/{}.py".format(name) for name in (
        "__init__", "version", "engine", "cuda", "runner", "builder", "calibration_cache", "onnx_support",
        "kit_build", "jetson", "bench")),
    *sorted(p.relative_to(Path(edgekit.__file__).parent).as_posix()       # the camera package, all of it
            for p in (Path(edgekit.__file__).parent / "camera").rglob("*.py")
            if p.relative_to(Path(edgekit.__file__).parent).as_posix() not in WORKSTATION_ONLY),
)
ENTRY = "edgekit.camera.app:main"


def device_files() -> List[Path]:
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
            shutil.copyfile(str(path), str(target))
        module, function = ENTRY.split(":")
        # zipapp's own main= would drop the exit status: the program's 2 on an error must reach the shell
        (Path(tmp) / "__main__.py").write_text(
            "import sys\nfrom {} import {}\nsys.exit({}())\n".format(module, function, function))
        zipapp.create_archive(tmp, str(dest), interpreter="/usr/bin/env python3")
    return dest
