"""What validation needs from each task: its figures on the test split, the deployed pipeline
(model + post-processing, for timing), and its own sections of the report.

``stages/validate.py`` owns the rest: loading artifacts, timing, the gates, the line rate, the
robustness conditions and the report's frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgekit.backends.base import Runner
from edgekit.data.recipe_data import SplitData
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe


class TaskValidation(Protocol):
    headline: str      # metric compared across artifacts and with the paper
    column: str        # its name in tables
    paper_key: str     # the key of ``recipe.paper`` holding the paper's figure
    images: list[np.ndarray]   # test images as read (uint8 grey)
    x: np.ndarray      # the same, pre-processed

    def pipeline(self, runner: Runner) -> Callable[[np.ndarray], Any]:
        """A batch in, the deployed answer out (post-processing included): what the line runs."""
        ...

    def evaluate(self, runner: Runner, label: str) -> dict[str, Any]:
        """Every figure of this task on the clean test split (``headline`` among them)."""
        ...

    def score(self, runner: Runner, x: np.ndarray, desc: str) -> float:
        """The headline figure on another version of the test images (a robustness condition)."""
        ...

    def report(self, results: dict[str, Any]) -> list[str]:
        """Markdown lines of the task's own report sections."""
        ...

    def write_extras(self, folder: Path, results: dict[str, Any]) -> list[str]:
        """Extra files (figures) written into the validation folder; returns their names."""
        ...


def task_validation(recipe: Recipe, data: SplitData) -> TaskValidation:
    if recipe.task == "classification":
        from edgekit.validation.classification import ClassificationValidation

        return ClassificationValidation(recipe, data)
    if recipe.task == "detection":
        from edgekit.validation.detection import DetectionValidation

        return DetectionValidation(recipe, data)
    raise EdgekitError(f"validate: task {recipe.task!r} of recipe {recipe.name} is not supported yet")
