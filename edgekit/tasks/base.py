"""What a task is: the one object the stages ask about everything that is that task's own.

A task package (``edgekit/tasks/<task>/``) registers one :class:`Task` by name. The stages never
branch on ``recipe.task``: training asks the task for its batches, loss and test figure
(:class:`TrainingTask`), validation for its figures, report sections and pictures
(:class:`TaskValidation`), export for its graph outputs, compile and the line for its host
post-processing and how to describe it in ``pipeline.json``.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import torch

from edgekit.backends.base import Runner


class TrainingTask(Protocol):
    headline: str      # key of ``evaluate``'s result that summarises the model
    label: str         # how reports name it, e.g. "test accuracy %"

    def batches(self, epoch: int, batch_size: int, workers: int = 0) -> Iterable[tuple[torch.Tensor, ...]]:
        """One epoch of (input, *targets) batches, shuffled and augmented from (seed, epoch)."""
        ...

    def loss(self, outputs, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]: ...


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


class Task(Protocol):
    name: str
    outputs: tuple[str, ...]   # the exported graph's outputs, in the order runners return them

    def training(self, recipe, data, seed: int) -> TrainingTask: ...

    def validation(self, recipe, data) -> TaskValidation: ...

    def postprocessor(self, recipe) -> Callable[[list[np.ndarray]], Any]:
        """A batch's raw outputs -> the deployed answer, the same after every backend."""
        ...

    def describe_postprocess(self, recipe, folder: Path) -> dict[str, Any]:
        """``pipeline.json``'s post-processing entry (writing any file it needs into ``folder``)."""
        ...

    def line_record(self, answer: Any, classes: tuple[str, ...], min_score: float) -> dict[str, Any]:
        """One image's deployed answer as the line reports it (JSON): classes by name, boxes as fractions of
        the image (x0, y0, x1, y1); detections below ``min_score`` left out."""
        ...


class TaskPackage:
    """The base of a task package's registered class: its training and validation classes are named
    (``module:Class``) and imported when first asked for."""
    outputs: tuple[str, ...] = ()
    training_class = ""        # e.g. "edgekit.tasks.detection.train:DetectionTraining"
    validation_class = ""

    @staticmethod
    def _load(ref: str) -> Any:
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)

    def training(self, recipe, data, seed: int) -> TrainingTask:
        return self._load(self.training_class)(recipe, data, seed)

    def validation(self, recipe, data) -> TaskValidation:
        return self._load(self.validation_class)(recipe, data)

    def line_record(self, answer: Any, classes: tuple[str, ...], min_score: float) -> dict[str, Any]:
        from edgekit.camera.post import module

        return module(self.name).record(answer, classes, min_score)

    def frame_summary(self, answer: Any, classes: tuple[str, ...]) -> tuple[float, str]:
        """The model's confidence in one image's answer and what it answered in a word, as the camera's drift
        watch reads them."""
        from edgekit.camera.post import module

        return module(self.name).frame_summary(answer, classes)
