"""Detection: priors, box coding, matching, loss, host post-processing, metrics and drawings;
multibox training and VOC/COCO validation."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task
from edgekit.tasks.base import TaskPackage


@register_task("detection")
class Detection(TaskPackage):
    outputs = ("loc", "conf")
    training_class = "edgekit.tasks.detection.train:DetectionTraining"
    validation_class = "edgekit.tasks.detection.val:DetectionValidation"

    def postprocessor(self, recipe):
        from edgekit.camera.post.detection import postprocess
        from edgekit.tasks.detection.spec import DetectionSpec

        spec = DetectionSpec.from_recipe(recipe)
        priors, cfg = spec.prior_boxes, spec.postprocess
        return lambda outputs: postprocess(outputs[0], outputs[1], priors, cfg)

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.tasks.detection.spec import DetectionSpec

        return DetectionSpec.from_recipe(recipe).describe(folder)
