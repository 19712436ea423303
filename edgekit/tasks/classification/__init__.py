"""Classification: logits -> class; cross-entropy training; accuracy, per-class figures, confusion."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task
from edgekit.tasks.base import TaskPackage


@register_task("classification")
class Classification(TaskPackage):
    outputs = ("logits",)
    training_class = "edgekit.tasks.classification.train:ClassificationTraining"
    validation_class = "edgekit.tasks.classification.val:ClassificationValidation"

    def postprocessor(self, recipe):
        from edgekit.camera.post.classification import postprocess

        return lambda outputs: postprocess(outputs[0])

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.camera.post.classification import config

        return config()
