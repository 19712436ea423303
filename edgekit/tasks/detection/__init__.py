"""Detection: priors, box coding, matching, loss, host post-processing, metrics and drawings;
multibox training and VOC/COCO validation."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task


@register_task("detection")
class Detection:
    outputs = ("loc", "conf")
    reads_boxes = True

    def training(self, recipe, data, seed: int):
        from edgekit.tasks.detection.train import DetectionTraining

        return DetectionTraining(recipe, data, seed)

    def validation(self, recipe, data):
        from edgekit.tasks.detection.val import DetectionValidation

        return DetectionValidation(recipe, data)

    def postprocessor(self, recipe):
        from edgekit.tasks.detection.postprocess import postprocess
        from edgekit.tasks.detection.spec import DetectionSpec

        spec = DetectionSpec.from_recipe(recipe)
        priors, cfg = spec.prior_boxes, spec.postprocess
        return lambda outputs: postprocess(outputs[0], outputs[1], priors, cfg)

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.tasks.detection.spec import DetectionSpec

        return DetectionSpec.from_recipe(recipe).describe(folder)
