"""Segmentation: defect masks from one logit map (binary) or a map per class; BCE/CE + Dice training
(with LSA-Net's location and feature-difference losses); PA / Dice / IoU validation, per class where
the recipe has classes; thresholded connected components per class on the host."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task
from edgekit.tasks.base import TaskPackage


@register_task("segmentation")
class SegmentationTask(TaskPackage):
    outputs = ("mask",)
    training_class = "edgekit.tasks.segmentation.train:SegmentationTraining"
    validation_class = "edgekit.tasks.segmentation.val:SegmentationValidation"

    def postprocessor(self, recipe):
        from edgekit.camera.post.segmentation import postprocess
        from edgekit.tasks.segmentation.spec import SegmentationSpec

        spec = SegmentationSpec.from_recipe(recipe).postprocess
        return lambda outputs: postprocess(outputs[0], spec)

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.camera.post.segmentation import config
        from edgekit.tasks.segmentation.spec import SegmentationSpec

        spec = SegmentationSpec.from_recipe(recipe)
        return config(spec.postprocess, spec.classes)
