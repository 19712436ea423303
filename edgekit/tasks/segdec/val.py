"""Segmentation+decision figures: the decision's AUC, AP, F-measure (best and at the recipe's threshold),
FP and FN over the test images, and the segmentation figures of the map (upsampled to the network's
input size) against the masks; the masks drawn over sample images with each image's score."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edgekit.backends.base import Runner
from edgekit.camera.post.segdec import Decided
from edgekit.camera.post.segmentation import Segmentation
from edgekit.data.recipe_data import SplitData
from edgekit.recipes import Recipe
from edgekit.report import markdown_table
from edgekit.tasks.segdec.metrics import decision_answers, decision_figures
from edgekit.tasks.segdec.spec import DecisionSpec
from edgekit.tasks.segmentation.metrics import split_figures
from edgekit.tasks.segmentation.val import SegmentationValidation

FIGURES = (("ap", "AP %"), ("auc", "AUC %"), ("f_best", "F best %"), ("fp_best", "FP"), ("fn_best", "FN"),
           ("f_at_threshold", "F at threshold %"), ("fp", "FP at threshold"), ("fn", "FN at threshold"),
           ("dice", "Dice %"), ("defect_iou", "defect IoU %"))


class SegDecValidation(SegmentationValidation):
    headline = "ap"
    column = "AP %"
    paper_key = "ap"
    figures = FIGURES

    def __init__(self, recipe: Recipe, data: SplitData) -> None:
        super().__init__(recipe, data)
        self.decision = DecisionSpec.from_recipe(recipe)
        self.labels = np.array([t.any() for t in self.truths])

    def _upsampled(self, answers: list[Decided]) -> list[Segmentation]:
        """Each map's components at the network's input size (nearest), for figures and pictures."""
        return [Segmentation(cv2.resize(a.segmentation.classes, (self.size, self.size), interpolation=cv2.INTER_NEAREST),
                             a.segmentation.defects) for a in answers]

    def _decided(self, answers: list[Decided]) -> dict[str, Any]:
        return decision_figures(self.labels, np.array([a.score for a in answers]), self.decision.threshold)

    def evaluate(self, runner: Runner, label: str) -> dict[str, Any]:
        answers = self.answers(runner, self.x, f"{label}: test split")
        segs = self._upsampled(answers)
        self.results[label] = segs
        pixels = split_figures([s.classes for s in segs], self.truths, self.groups, self.group_names)
        scores = np.array([a.score for a in answers])
        return {**self._decided(answers), **{k: pixels[k] for k in ("dice", "defect_iou", "mean_iou", "per_group")},
                "components": sum(len(s.defects) for s in segs),
                "answers": decision_answers(self.labels, scores, self.decision.threshold)}

    def score(self, runner: Runner, x: np.ndarray, desc: str) -> float:
        return self._decided(self.answers(runner, x, desc))["ap"]

    def report(self, results: dict[str, Any]) -> list[str]:
        rows = results["rows"]
        r0 = rows[0]
        table = [[r["artifact"], *[r[k] for k, _ in self.figures]] for r in rows]
        paper = self.paper
        if paper.get("ap") is not None:
            table.append([f"paper ({paper.get('ref', '')}, {paper.get('dataset', '')})", paper.get("ap"),
                          paper.get("auc"), paper.get("f"), paper.get("fp"), paper.get("fn"), None, None, None, None,
                          None])
        return ["## Decision and segmentation figures", "",
                markdown_table(["artifact", *[h for _, h in self.figures]], table), "",
                f"{r0['images']} test images, {r0['positives']} defective ({100 * r0['positives'] / max(1, r0['images']):.1f} %: "
                "the AP of answering at random; an image is defective when its mask holds a defect pixel). F best, FP "
                "and FN at the threshold that maximises F on this split, as the paper reports them "
                f"({r0['best_threshold']:.3g} for the FP32 model: chosen on the test images, information); the line "
                f"decides at the recipe's threshold, probability >= {self.decision.threshold}: F, FP and FN there. "
                "Dice and defect IoU: the segmentation map after the deployed post-processing, "
                f"upsampled to {self.size}x{self.size}, against the masks, over every test image.", ""] + (
            [f"![masks]({name})" for name in results.get("extras", [])] + [""] if results.get("extras") else [])
