"""Host-side task code: post-processing and metrics, shared by validation, benchmarks and the line."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe


def postprocessor(recipe: Recipe) -> Callable[[list[np.ndarray]], Any]:
    """The recipe's post-processing of a batch's raw outputs: class indices, or detections per image."""
    if recipe.task == "classification":
        from edgekit.tasks.classification import predict

        return lambda outputs: predict(outputs[0])
    if recipe.task == "detection":
        from edgekit.tasks.detection.postprocess import postprocess
        from edgekit.tasks.detection.spec import DetectionSpec

        spec = DetectionSpec.from_recipe(recipe)
        priors, cfg = spec.prior_boxes, spec.postprocess
        return lambda outputs: postprocess(outputs[0], outputs[1], priors, cfg)
    raise EdgekitError(f"{recipe.path}: post-processing for task {recipe.task!r} is not supported yet")
