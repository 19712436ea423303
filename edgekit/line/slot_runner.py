"""What a camera's slot runs: the backend and model file a verified bundle names, loaded through the
backend's runner; the engine built on the camera for a device-kit bundle. The golden check and the
line-side runtime load slots through here. Device-side code: Python 3.6+.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from edgekit.backends import get_backend
from edgekit.backends.tensorrt.engine import ENGINE_FILE
from edgekit.backends.tensorrt.kit_build import engine_dir
from edgekit.deploy.bundle import MANIFEST
from edgekit.deploy.slots import ENGINES, SLOTS
from edgekit.errors import EdgekitError

PREFERENCE = ("int8", "fp16", "fp32")       # fastest first: what a slot runs, and what a bundle carries


def slot_dir(install: Path, slot: str) -> Path:
    folder = Path(install) / SLOTS / slot
    if not (folder / MANIFEST).is_file():
        raise EdgekitError("{}: no verified slot {}".format(Path(install) / SLOTS, slot))
    return folder


def slot_model(install: Path, slot: str) -> Tuple[str, str, Path, Dict[str, Any]]:
    """(backend, precision, model file, bundle manifest) of a verified slot."""
    folder = slot_dir(install, slot)
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("kind") == "device-kit":
        root = Path(install) / ENGINES / slot
        for precision in PREFERENCE:
            engine = engine_dir(root, precision) / ENGINE_FILE
            if engine.is_file():
                return "tensorrt", precision, engine, manifest
        raise EdgekitError("{}: no TensorRT engine built for slot {} (flash builds them on the camera)".format(root, slot))
    compiled = folder / "model" / "manifest.json"
    if not compiled.is_file():
        raise EdgekitError("{}: slot {} holds no compiled artifact".format(folder, slot))
    results = json.loads(compiled.read_text())["results"]
    return manifest["backend"], manifest["precision"], folder / "model" / results["file"], manifest


def load_runner(install: Path, slot: str, threads: Optional[int] = None) -> Tuple[Any, str]:
    """The slot's runner (batch 1, as validated) and the precision it runs."""
    backend, precision, path, _ = slot_model(install, slot)
    return get_backend(backend).load(path, threads or os.cpu_count() or 1), precision
