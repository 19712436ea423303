"""What training needs from each task: batches, the loss, and the evaluation of a model.

``stages/train.py`` owns the loop (optimiser, schedule, device, resume, checkpoints); a task
module here owns its data in memory, its loss and its headline test figure.
"""
from __future__ import annotations

from typing import Iterable, Protocol

import torch

from edgekit.data.recipe_data import SplitData
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe


class TrainingTask(Protocol):
    headline: str      # key of ``evaluate``'s result that summarises the model
    label: str         # how reports name it, e.g. "test accuracy %"

    def batches(self, epoch: int, batch_size: int, workers: int = 0) -> Iterable[tuple[torch.Tensor, ...]]:
        """One epoch of (input, *targets) batches, shuffled and augmented from (seed, epoch)."""
        ...

    def loss(self, outputs, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]: ...


def training_task(recipe: Recipe, data: SplitData, seed: int) -> TrainingTask:
    if recipe.task == "classification":
        from edgekit.training.classification import ClassificationTraining

        return ClassificationTraining(recipe, data, seed)
    if recipe.task == "detection":
        from edgekit.training.detection import DetectionTraining

        return DetectionTraining(recipe, data, seed)
    raise EdgekitError(f"{recipe.path}: training for task {recipe.task!r} is not supported yet")
