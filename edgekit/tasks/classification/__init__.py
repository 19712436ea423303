"""Classification: logits -> class; cross-entropy training; accuracy, per-class figures, confusion."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task


@register_task("classification")
class Classification:
    outputs = ("logits",)
    reads_boxes = False

    def training(self, recipe, data, seed: int):
        from edgekit.tasks.classification.train import ClassificationTraining

        return ClassificationTraining(recipe, data, seed)

    def validation(self, recipe, data):
        from edgekit.tasks.classification.val import ClassificationValidation

        return ClassificationValidation(recipe, data)

    def postprocessor(self, recipe):
        from edgekit.tasks.classification.metrics import predict

        return lambda outputs: predict(outputs[0])

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        return {"argmax": "over logits' last axis"}
