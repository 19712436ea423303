"""A model as the line runs it: the recipe's pre-processing, the runner, the task's post-processing and
the JSON answer per frame, rebuilt from what a compiled artifact carries (``recipe.yaml``) with the code
validation ran. One frame at a time, batch 1, as validated."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.deploy.bundle import MANIFEST
from edgekit.errors import EdgekitError
from edgekit.line import golden
from edgekit.line.slot_runner import load_runner, slot_dir
from edgekit.recipes import load_recipe
from edgekit.stages.compile import RECIPE
from edgekit.tasks import get_task


def _recipe(folder: Path):
    path = Path(folder) / RECIPE
    if not path.is_file():
        raise EdgekitError(f"{folder}: no {RECIPE} (compiled by an older edgekit: build it again)")
    return load_recipe(path)


class LineModel:
    def __init__(self, recipe, runner: Any, name: str, precision: str, golden_check: dict | None = None,
                 bundle: dict | None = None) -> None:
        self.recipe, self.runner, self.name, self.precision = recipe, runner, name, precision
        self.task = get_task(recipe)
        self.post = self.task.postprocessor(recipe)
        self.golden, self.bundle = golden_check, bundle or {}

    @classmethod
    def from_slot(cls, install: Path, slot: str, threads: int | None = None) -> "LineModel":
        """A camera's slot, loaded and checked on its golden images before anyone may use it."""
        folder = slot_dir(install, slot)
        recipe = _recipe(folder / "model")
        runner, precision = load_runner(install, slot, threads)
        checked = golden.check(runner, folder / golden.FOLDER, precision, f"slot {slot}")
        return cls(recipe, runner, slot, precision, checked, json.loads((folder / MANIFEST).read_text()))

    @classmethod
    def for_runner(cls, folder: Path, runner: Any) -> "LineModel":
        """``runner`` of the artifact or engine in ``folder``, with the recipe it was compiled from (for
        ``edgekit bench``'s end-to-end timing)."""
        return cls(_recipe(folder), runner, Path(folder).name, "")

    def __call__(self, frame: np.ndarray) -> Any:
        """One decoded frame (uint8 grey or BGR, any size) -> the deployed answer."""
        return self.answer(self.recipe.preprocess(frame))

    def answer(self, x: np.ndarray) -> Any:
        """One pre-processed frame (float32 CHW) -> the deployed answer."""
        return self.post(self.runner.infer(x[None]))[0]

    def record(self, answer: Any, min_score: float) -> dict[str, Any]:
        return self.task.line_record(answer, self.recipe.classes, min_score)

    def describe(self) -> dict[str, Any]:
        return {"slot": self.name, "recipe": self.recipe.name, "artifact": self.bundle.get("artifact", self.name),
                "backend": getattr(self.runner, "backend", "?"), "precision": self.precision}

    def close(self) -> None:
        if hasattr(self.runner, "close"):
            self.runner.close()
