"""Segmentation + decision (SegDec-Net, seeds/001): an image-level defect decision and the defect map it
rests on; weak, mixed and full supervision; AUC / AP / F validation; the decision and the map's
components on the host. Masks are read and post-processed as the segmentation task's (binary)."""
from __future__ import annotations

from pathlib import Path

from edgekit.tasks import register_task
from edgekit.tasks.base import TaskPackage


@register_task("segmentation+decision")
class SegDecTask(TaskPackage):
    outputs = ("mask", "decision")
    training_class = "edgekit.tasks.segdec.train:SegDecTraining"
    validation_class = "edgekit.tasks.segdec.val:SegDecValidation"

    def postprocessor(self, recipe):
        from edgekit.camera.post.segdec import postprocess
        from edgekit.tasks.segdec.spec import DecisionSpec
        from edgekit.tasks.segmentation.spec import SegmentationSpec

        threshold, spec = DecisionSpec.from_recipe(recipe).threshold, SegmentationSpec.from_recipe(recipe).postprocess
        return lambda outputs: postprocess(outputs[0], outputs[1], threshold, spec)

    def calibration_strata(self, recipe, data) -> list[int]:
        """Each training image's group and whether it is defective, as one stratum number: an INT8
        calibration set then holds defective and defect-free images of every group."""
        from edgekit.data.images import read_grey
        from edgekit.data.masks import class_map
        from edgekit.tasks.segmentation.spec import SegmentationSpec

        spec, groups, out = SegmentationSpec.from_recipe(recipe), data.dataset.classes, []
        for s in data.train:
            if s.runs or s.mask is None:              # Severstal's rows: a defect; no mask: defect-free
                defective = bool(s.runs)
            else:
                defective = bool(spec.target(class_map(read_grey(s.mask))[0], groups[s.label]).any())
            out.append(2 * s.label + defective)
        return out

    def describe_postprocess(self, recipe, folder: Path) -> dict:
        from edgekit.camera.post.segdec import config
        from edgekit.tasks.segdec.spec import DecisionSpec
        from edgekit.tasks.segmentation.spec import SegmentationSpec

        return config(DecisionSpec.from_recipe(recipe).threshold, SegmentationSpec.from_recipe(recipe).postprocess)
