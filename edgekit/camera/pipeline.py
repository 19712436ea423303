"""``pipeline.json``: what a deployable model's inputs and outputs mean, written beside every compiled
artifact and device kit by the compile stage, read by the camera. The camera runs a model from it alone
(no recipe, no task package): the pre-processing (:class:`~edgekit.camera.preprocess.Preprocess`), the graph's
outputs in order, and the task's post-processing (:mod:`edgekit.camera.post`, with any file it names beside
it, e.g. a detector's ``priors.npy``)::

    {"format": 2, "recipe": ..., "task": ..., "classes": [...],
     "input": {"name": "input", "shape": [1, C, H, W], "layout": "NCHW", "preprocess": {...}},
     "outputs": [...], "postprocess": {...}}
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from edgekit.camera import post
from edgekit.camera.preprocess import Preprocess
from edgekit.errors import EdgekitError

FILE = "pipeline.json"
FORMAT = 2          # 2: the post-processing's settings are machine-readable; 1 (unversioned) described them in words


def write(folder: Path, pipeline: Dict[str, Any]) -> Path:
    path = Path(folder) / FILE
    path.write_text(json.dumps(dict({"format": FORMAT}, **pipeline), indent=2) + "\n")
    return path


class Pipeline:
    """A model's pre- and post-processing as ``pipeline.json`` in ``folder`` describes them."""

    def __init__(self, folder: Path) -> None:
        path = Path(folder) / FILE
        if not path.is_file():
            raise EdgekitError("{}: no {} (compiled by an older edgekit: build it again)".format(folder, FILE))
        try:
            raw = json.loads(path.read_text())
        except ValueError as exc:
            raise EdgekitError("{}: not JSON ({})".format(path, exc)) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format", 1) if isinstance(raw, dict) else "?"
            raise EdgekitError("{}: format {}, this edgekit reads {} (build it again with this edgekit)".format(
                path, found, FORMAT))
        if raw.get("task") not in post.MODULES:
            raise EdgekitError("{}: task {!r} has no camera-side post-processing (known: {})".format(
                path, raw.get("task"), ", ".join(sorted(post.MODULES))))
        try:
            self.task, self.recipe = raw["task"], raw["recipe"]
            self.classes = tuple(raw["classes"])
            self.outputs = tuple(raw["outputs"])
            self.input_shape = tuple(raw["input"]["shape"])
            self.preprocess = Preprocess.from_config(raw["input"]["preprocess"])
            self._post = post.module(self.task)
            self.postprocess = self._post.build(raw["postprocess"], Path(folder))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise EdgekitError("{}: {} ({}: {})".format(path, "incomplete or inconsistent", type(exc).__name__,
                                                        exc)) from None
        if self.input_shape[1:] != self.preprocess.input_shape:
            raise EdgekitError("{}: input shape {} does not match the pre-processing's {}".format(
                path, list(self.input_shape), list(self.preprocess.input_shape)))

    def answers(self, outputs: Sequence[np.ndarray]) -> List[Any]:
        """A batch's raw outputs (graph order) -> one answer per image."""
        return self.postprocess(outputs)

    def record(self, answer: Any, min_score: float) -> Dict[str, Any]:
        """One answer as a JSON line reports it (classes by name; boxes as fractions of the image)."""
        return self._post.record(answer, self.classes, min_score)

    def frame_summary(self, answer: Any) -> Tuple[float, str]:
        """The model's confidence in one frame's answer and what it answered in a word (the class, "none"): the
        drift watch's ``score`` and the group it reads a frame against."""
        return self._post.frame_summary(answer, self.classes)
