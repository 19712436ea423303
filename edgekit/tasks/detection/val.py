"""Detection figures: per-class AP, mAP@0.5 (VOC07 and all-point), COCO mAP, and a PNG grid of
detections on sample test images, every backend through the same host post-processing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import Runner
from edgekit.camera.post.detection import Detections
from edgekit.data.recipe_data import SplitData, read_images
from edgekit.plots import pr_curves
from edgekit.recipes import Recipe
from edgekit.report import markdown_table
from edgekit.stats import Answers
from edgekit.tasks import postprocessor
from edgekit.tasks.answers import DeployedAnswers
from edgekit.tasks.detection.draw import TRUTH, draw, draw_detections
from edgekit.tasks.detection.metrics import GroundTruth, detection_metrics, per_image_hits, voc_map, weighted_map
from edgekit.tasks.detection.spec import DetectionSpec
from edgekit.tasks.pictures import grid, write_png

GRID = "detections.png"
PR = "pr_curves.png"
SHOW_SCORE = 0.3       # detections drawn in the grid: score at least this
LINE_SCORE = 0.5       # detections the line reports (`edgekit run --min-score`'s default): whose change the gates count


class DetectionValidation(DeployedAnswers):
    headline = "map_voc07"
    column = "mAP@0.5 % (VOC07)"
    paper_key = "map"

    def __init__(self, recipe: Recipe, data: SplitData) -> None:
        self.spec = DetectionSpec.from_recipe(recipe)
        self.classes, self.paper = recipe.classes, recipe.paper
        self.samples = int(recipe.validate.get("samples", 12))
        self.images = read_images(data.test, "reading test images")
        self.x = recipe.preprocess.batch(self.images)
        self.sizes = [(im.shape[1], im.shape[0]) for im in self.images]
        self.truths = GroundTruth.for_images(data.test, self.images)
        self.labels = [s.label for s in data.test]
        self.detections: dict[str, list[Detections]] = {}
        self.curves: dict[str, dict] = {}
        self.post = postprocessor(recipe)

    def evaluate(self, runner: Runner, label: str) -> dict[str, Any]:
        dets = self.answers(runner, self.x, f"{label}: test split")
        self.detections[label] = dets
        figures = detection_metrics(self.truths, dets, self.classes, self.sizes)
        self.curves[label] = figures.pop("curves")   # arrays for the picture, not for results.json
        matched = figures.pop("matched")
        figures["answers"] = Answers(per_image_hits(matched, len(dets), LINE_SCORE), lambda w: weighted_map(matched, w))
        return figures

    def score(self, runner: Runner, x: np.ndarray, desc: str) -> float:
        return voc_map(self.truths, self.answers(runner, x, desc), self.classes)["map_voc07"]

    def report(self, results: dict[str, Any]) -> list[str]:
        classes = list(self.classes)
        paper_ap = self.paper.get("per_class_ap", {})
        rows = results["rows"]
        out = ["## Per-class AP@0.5 % (VOC07 11-point)", ""]
        table = [[r["artifact"], *[r["ap_voc07"].get(c) for c in classes], r["map_voc07"]] for r in rows]
        if paper_ap:
            table.append([f"paper ({self.paper.get('ref', '')})", *[paper_ap.get(c) for c in classes],
                          self.paper.get("map")])
        out += [markdown_table(["artifact", *classes, "mAP"], table), "",
                f"Ground-truth boxes per class: {', '.join(f'{c} {n}' for c, n in rows[0]['gt_per_class'].items())}.",
                "",
                "Objects marked difficult (VOC devkit protocol: left out of recall, a detection on one counts "
                f"neither way): {self._difficult(rows[0])}.", ""]
        if PR in results.get("extras", []):
            out += [f"![precision-recall curves]({PR})", ""]
        out += ["## Other definitions", "",
                markdown_table(["artifact", "mAP@0.5 VOC07 %", "mAP@0.5 all-point %", "COCO AP50 %",
                                "COCO AP75 %", "COCO mAP@[.5:.95] %", "detections"],
                               [[r["artifact"], r["map_voc07"], r["map_all_point"], r["coco"]["ap50"],
                                 r["coco"]["ap75"], r["coco"]["map"], r["detections"]] for r in rows]), "",
                f"The paper's {self.paper.get('map')} is compared with the VOC07 11-point figure. COCO figures "
                "by pycocotools (101-point interpolation, at most 100 detections per image).", ""]
        if GRID in results.get("extras", []):
            out += ["## Detections on sample test images", "",
                    f"![detections]({GRID})", "",
                    f"First column: ground truth (white). Then each artifact's detections with score >= {SHOW_SCORE}, "
                    "drawn after the same host post-processing.", ""]
        return out

    @staticmethod
    def _difficult(row: dict[str, Any]) -> str:
        counts = row.get("difficult_per_class", {})
        return (", ".join(f"{c} {n}" for c, n in counts.items() if n) or "none") + f" ({sum(counts.values())} in all)"

    def sample_indices(self) -> list[int]:
        """Up to ``samples`` test images, spread over the classes (first images of each class)."""
        per_class = max(1, -(-self.samples // len(self.classes)))
        chosen: list[int] = []
        for k in range(len(self.classes)):
            chosen += [i for i, lab in enumerate(self.labels) if lab == k][:per_class]
        return sorted(chosen)[: self.samples]

    def write_extras(self, folder: Path, results: dict[str, Any]) -> list[str]:
        written = []
        if self.curves:
            ap = {r["artifact"]: r["ap_voc07"] for r in results["rows"]}
            written.append(pr_curves(Path(folder) / PR, self.curves, self.classes, ap))
        if not self.detections or self.samples <= 0:
            return written
        labels = list(self.detections)
        tiles = []
        for i in self.sample_indices():
            image = self.images[i]
            w, h = self.sizes[i]
            truth = self.truths[i]
            row = [draw(image, truth.boxes * np.array([w, h, w, h]), truth.labels, self.classes, colour=TRUTH)]
            row += [draw_detections(image, self.detections[lab][i], self.classes, SHOW_SCORE) for lab in labels]
            tiles.append(row)
        return [*written, write_png(Path(folder) / GRID, grid(tiles, ["ground truth", *labels]))]
