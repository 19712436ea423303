"""Tasks, one package each (``edgekit/tasks/<task>/``: training, validation, post-processing,
metrics), registered once by name as timm registers models. Stages ask :func:`get_task`."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError

_TASKS: dict[str, Any] = {}


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator: one instance of the class serves every recipe of task ``name``."""
    def wrap(cls: type) -> type:
        if name in _TASKS:
            raise ValueError(f"task {name!r} registered twice")
        cls.name = name
        _TASKS[name] = cls()
        return cls
    return wrap


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(recipe) -> Any:
    """The registered task of a recipe (an error naming the recipe file for a task not built yet)."""
    task = _TASKS.get(recipe.task)
    if task is None:
        raise EdgekitError(f"{recipe.path}: task {recipe.task!r} is not supported yet (supported: "
                           f"{', '.join(task_names())})")
    return task


def postprocessor(recipe) -> Callable[[list[np.ndarray]], Any]:
    """The recipe's post-processing of a batch's raw outputs (shared by validation, benchmarks and the line)."""
    return get_task(recipe).postprocessor(recipe)


from edgekit.tasks import classification, detection, segdec, segmentation  # noqa: E402,F401  (registers the bundled tasks)
