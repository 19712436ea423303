"""Detection: priors, box coding, matching, loss, host post-processing, metrics and drawings;
multibox training and VOC/COCO validation."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task
from edgekit.tasks.base import TaskPackage


@register_task("detection")
class Detection(TaskPackage):
    outputs = ("loc", "conf")
    reads_boxes = True
    training_class = "edgekit.tasks.detection.train:DetectionTraining"
    validation_class = "edgekit.tasks.detection.val:DetectionValidation"

    def postprocessor(self, recipe):
        from edgekit.tasks.detection.postprocess import postprocess
        from edgekit.tasks.detection.spec import DetectionSpec

        spec = DetectionSpec.from_recipe(recipe)
        priors, cfg = spec.prior_boxes, spec.postprocess
        return lambda outputs: postprocess(outputs[0], outputs[1], priors, cfg)

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.tasks.detection.spec import DetectionSpec

        return DetectionSpec.from_recipe(recipe).describe(folder)

    def line_record(self, answer, classes: tuple[str, ...], min_score: float) -> dict:
        keep = answer.scores >= min_score
        return {"defects": [{"class": classes[int(k)], "score": round(float(s), 4),
                             "box": [round(float(v), 4) for v in box]}
                            for box, s, k in zip(answer.boxes[keep], answer.scores[keep], answer.labels[keep])]}
