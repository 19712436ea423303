"""A camera's slot as the line runs it: the runner of the model the verified bundle names (its compiled
artifact, or the TensorRT engine flash built on the camera from its device kit), with the pre- and
post-processing its ``pipeline.json`` describes; one frame at a time, batch 1, as validated. The golden check
(:mod:`edgekit.camera.golden`), ``edgekit run`` and the device app's ``run`` all load slots through
:meth:`LineModel.from_slot`, so a slot that passes golden is the slot the line runs.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edgekit.backends import get_backend
from edgekit.camera import drift, golden
from edgekit.camera.bundle import MANIFEST
from edgekit.camera.pipeline import Pipeline
from edgekit.camera.slots import ENGINES, SLOTS
from edgekit.errors import EdgekitError

PREFERENCE = ("int8", "fp16", "fp32")       # fastest first: what a slot runs, and what a bundle carries
MODEL = "model"                              # a slot's folder of what it runs
BLOBS = "openvino-cache"                     # <install>/engines/<slot>/: OpenVINO's compiled blobs of its IR


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
        from edgekit.backends.tensorrt.engine import ENGINE_FILE      # a CPU camera never loads TensorRT's code
        from edgekit.backends.tensorrt.kit_build import engine_dir

        root = Path(install) / ENGINES / slot
        for precision in PREFERENCE:
            engine = engine_dir(root, precision) / ENGINE_FILE
            if engine.is_file():
                return "tensorrt", precision, engine, manifest
        raise EdgekitError("{}: no TensorRT engine built for slot {} (flash builds them on the camera)".format(root, slot))
    compiled = folder / MODEL / "manifest.json"
    if not compiled.is_file():
        raise EdgekitError("{}: slot {} holds no compiled artifact".format(folder, slot))
    results = json.loads(compiled.read_text())["results"]
    return manifest["backend"], manifest["precision"], folder / MODEL / results["file"], manifest


def blob_folder(install: Path, slot: str) -> Path:
    return Path(install) / ENGINES / slot / BLOBS


def blob_cache(install: Path, slot: str) -> Optional[Path]:
    """The folder of a slot's compiled blobs, made if need be; None where the install cannot be written to
    (the slot is then compiled at every load)."""
    folder = blob_folder(install, slot)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


class LineModel:
    """A runner (``infer(batch) -> outputs``) with the pipeline of the model it runs."""

    def __init__(self, pipeline: Pipeline, runner: Any, name: str, precision: str = "",
                 bundle: Optional[Dict[str, Any]] = None) -> None:
        self.pipeline, self.runner, self.name, self.precision = pipeline, runner, name, precision
        self.bundle = bundle or {}
        self.golden = None           # the golden check's figures, once passed
        self.drift = None            # type: Optional[drift.Reference]
        self.drift_problem = None    # type: Optional[str]

    @classmethod
    def from_slot(cls, install: Path, slot: str, threads: Optional[int] = None) -> "LineModel":
        """A camera's slot, loaded and passed through its golden images before anyone may use it.

        An OpenVINO slot is compiled once per camera: its compiled blob is kept beside the slot (``BLOBS``) and
        imported by the next load (the line's start, a hot swap after flash's golden check), which skips reading
        and compiling the IR. A blob that fails to import is compiled again by OpenVINO; one that imports but
        fails the golden images (gone bad on disk) is thrown away and the verified IR compiled afresh."""
        try:
            model = cls.checked(install, slot, threads)
        except EdgekitError:
            blobs = blob_folder(install, slot)
            if not blobs.is_dir() or not any(blobs.iterdir()):
                raise
            shutil.rmtree(str(blobs), ignore_errors=True)
            model = cls.checked(install, slot, threads)
        try:              # the watch is the line's instrument, never a reason not to run it
            model.drift = drift.Reference.load(slot_dir(install, slot))
            model.golden["drift_reference"] = model.drift is not None
        except EdgekitError as exc:
            model.drift_problem = str(exc)
            model.golden["drift_reference"] = model.drift_problem
        return model

    @classmethod
    def checked(cls, install: Path, slot: str, threads: Optional[int] = None) -> "LineModel":
        """The slot's runner with its pipeline, once its golden images pass."""
        folder = slot_dir(install, slot)
        backend, precision, path, manifest = slot_model(install, slot)
        pipeline = Pipeline(folder / MODEL)                  # a bad pipeline fails before the model loads
        blobs = blob_cache(install, slot) if backend == "openvino" else None
        options = {"cache": blobs} if blobs else {}
        runner = get_backend(backend).load(path, threads or os.cpu_count() or 1, **options)
        model = cls(pipeline, runner, slot, precision, manifest)
        try:
            model.golden = golden.check(model, folder / golden.FOLDER, "slot {}".format(slot))
        except BaseException:
            model.close()
            raise
        return model

    @classmethod
    def for_runner(cls, folder: Path, runner: Any) -> "LineModel":
        """``runner`` of the artifact or engine in ``folder``, with its pipeline (``edgekit bench``'s end-to-end
        timing)."""
        return cls(Pipeline(folder), runner, Path(folder).name)

    @property
    def preprocess(self):
        return self.pipeline.preprocess

    def __call__(self, frame: np.ndarray) -> Any:
        """One decoded frame (uint8 grey or BGR, any size) -> the deployed answer."""
        return self.answer(self.pipeline.preprocess(frame))

    def answer(self, x: np.ndarray) -> Any:
        """One pre-processed frame (float32 CHW) -> the deployed answer."""
        return self.pipeline.answers(self.runner.infer(x[None]))[0]

    def record(self, answer: Any, min_score: float) -> Dict[str, Any]:
        return self.pipeline.record(answer, min_score)

    def frame_summary(self, answer: Any) -> Tuple[float, str]:
        return self.pipeline.frame_summary(answer)

    def describe(self) -> Dict[str, Any]:
        return {"slot": self.name, "recipe": self.pipeline.recipe, "artifact": self.bundle.get("artifact", self.name),
                "backend": getattr(self.runner, "backend", "?"), "precision": self.precision}

    def close(self) -> None:
        if hasattr(self.runner, "close"):
            self.runner.close()
