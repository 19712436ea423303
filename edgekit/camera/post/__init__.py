"""What a model's raw outputs mean, per task: the answers validation scores on the workstation and the
camera reports on the line, from one implementation (numpy and OpenCV alone, Python 3.6+).

A task's module here has ``build(config, folder)`` (the post-processing a ``pipeline.json`` describes:
``config`` is its ``postprocess`` entry, ``folder`` holds any file it names) returning a callable from a
batch's raw outputs (in the graph's output order) to one answer per image, and ``record(answer, classes,
min_score)``, an answer as one JSON line reports it, and ``frame_summary(answer, classes)``, the model's
confidence in one frame's answer and what it answered in a word (what the drift watch follows and groups
frames by, :mod:`edgekit.camera.drift`). The workstation's task package builds the same
callable from the recipe and writes the config into ``pipeline.json``; a test holds the two equal.
"""
import importlib
from types import ModuleType

from edgekit.errors import EdgekitError

MODULES = {"classification": "classification", "detection": "detection", "segmentation": "segmentation",
           "segmentation+decision": "segdec"}


def module(task: str) -> ModuleType:
    """The post-processing module of ``task``."""
    if task not in MODULES:
        raise EdgekitError("task {!r} has no camera-side post-processing (known: {})".format(
            task, ", ".join(sorted(MODULES))))
    return importlib.import_module("{}.{}".format(__name__, MODULES[task]))
