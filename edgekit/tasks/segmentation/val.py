"""Segmentation figures: pixel accuracy, Dice, defect IoU and mean IoU from one confusion matrix,
per class and per group of the data, the trivial answers for scale, and predicted masks over
sample images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import Runner
from edgekit.camera.post.segmentation import Segmentation
from edgekit.data.recipe_data import SplitData
from edgekit.recipes import Recipe
from edgekit.report import markdown_table
from edgekit.stats import Answers
from edgekit.tasks import postprocessor
from edgekit.tasks.answers import DeployedAnswers
from edgekit.tasks.pictures import grid, write_png
from edgekit.tasks.segmentation.data import read_masked
from edgekit.tasks.segmentation.draw import PALETTE, tile
from edgekit.tasks.segmentation.metrics import (figures, image_figures, mean_defined, per_image_confusion,
                                               split_figures, trivial_figures)
from edgekit.tasks.segmentation.spec import SegmentationSpec

GRID = "masks.png"
FIGURES = (("pixel_accuracy", "PA %"), ("dice", "Dice %"), ("dice_soft", "soft Dice %"),
           ("defect_iou", "defect IoU %"), ("mean_iou", "mean IoU %"), ("defect_iou_per_image", "defect IoU % /img"),
           ("mean_iou_per_image", "mean IoU % /img"))
SUFFIX = "_per_image"             # a per-image reading of a figure


def pixel_answers(per_image: np.ndarray, key: str) -> Answers:
    """The gates' view of a segmentation: per image its right pixels; the figure ``key`` with the images
    weighted: from the weighted sum of the images' pixel confusion matrices (a split figure), or as the
    weighted mean of each image's own (``*_per_image``)."""
    right = np.trace(per_image, axis1=1, axis2=2).astype(np.float64)
    if key.endswith(SUFFIX):
        each = image_figures(per_image)[key[: -len(SUFFIX)]]
        return Answers(right, lambda w: mean_defined(each, w))
    return Answers(right, lambda w: figures(np.tensordot(w, per_image, 1).round().astype(np.int64))[key])


def defect_probability(logits: np.ndarray) -> np.ndarray:
    """One image's logits (C, H, W) -> its defect probability: sigmoid of a binary map, 1 - softmax of the
    background when per class."""
    logits = logits.astype(np.float32)
    if len(logits) == 1:
        return 1.0 / (1.0 + np.exp(-logits[0]))
    return 1.0 - np.exp(logits[0] - np.logaddexp.reduce(logits, axis=0))


class SegmentationValidation(DeployedAnswers):
    # The gates read the split's mean IoU: the reading that fits LSA-Net's own table (metrics.py)
    headline = "mean_iou"
    column = "mean IoU %"
    paper_key = "miou"
    figures = FIGURES                  # (key, column) of what evaluate() reports, in the report's order

    def __init__(self, recipe: Recipe, data: SplitData) -> None:
        self.spec = SegmentationSpec.from_recipe(recipe)
        self.paper, self.size = recipe.paper, recipe.preprocess.size
        self.samples = int(recipe.validate.get("samples", 8))
        test = read_masked(data.test, data.dataset.classes, self.size, self.spec, "reading test images and masks")
        self.images, self.truths, self.groups = test.images, test.masks, test.groups
        self.group_names = data.dataset.classes
        self.cut = test.cut
        self.x = recipe.preprocess.batch(self.images)
        self.post = postprocessor(recipe)
        self.results: dict[str, list[Segmentation]] = {}

    def _figures(self, segs: list[Segmentation], per_image: np.ndarray | None = None,
                 probs: list[np.ndarray] | None = None) -> dict[str, Any]:
        return split_figures([s.classes for s in segs], self.truths, self.groups, self.group_names, self.spec.classes,
                             per_image, probs)

    def evaluate(self, runner: Runner, label: str) -> dict[str, Any]:
        segs, probs = [], []
        for outputs, seg in self.outputs_and_answers(runner, self.x, f"{label}: test split"):
            segs.append(seg)
            probs.append(defect_probability(outputs[0][0]))       # the soft map beside the deployed answer
        self.results[label] = segs
        per_image = per_image_confusion([s.classes for s in segs], self.truths, len(self.spec.classes))
        return {**self._figures(segs, per_image, probs), "components": sum(len(s.defects) for s in segs),
                "answers": pixel_answers(per_image, self.headline)}

    def score(self, runner: Runner, x: np.ndarray, desc: str) -> float:
        return self._figures(self.answers(runner, x, desc))[self.headline]

    def report(self, results: dict[str, Any]) -> list[str]:
        rows = results["rows"]
        heads = [h for _, h in self.figures]
        table = [[r["artifact"], *[r[k] for k, _ in self.figures], r["components"]] for r in rows]
        table += [[f"({name})", *[f.get(k) for k, _ in self.figures], None]
                  for name, f in trivial_figures(self.truths, self.spec.classes).items()]
        paper = self.paper
        if paper.get("miou") is not None:
            table.append([f"paper ({paper.get('ref', '')}, {paper.get('dataset', '')}): its reading unsaid",
                          paper.get("pixel_accuracy"), paper.get("dice"), None, None, None, None, paper.get("miou"),
                          None])
        post = self.spec.postprocess
        out = ["## Segmentation figures", "", markdown_table(["artifact", *heads, "defects found"], table), "",
               "Two readings at the network's resolution "
               f"({self.size}x{self.size}; masks shrunk by area, no defect lost), after the deployed "
               f"post-processing (defect probability >= {post.threshold}, components of at least {post.min_area} px): "
               "one pixel confusion matrix over the test split (PA, Dice, IoU), and each image's own figures "
               "averaged over the images where defined (/img: a defect-free image answered defect-free has no "
               "defect IoU and a mean IoU of 100). Soft Dice uses the probabilities, not the threshold. "
               + ("Mean IoU is the mean of the background and defect IoU. The gates and the paper's \"IoU\" use the "
                  "split's mean IoU: LSA-Net's table pairs IoU 91.75 with Dice 81.78 on Magnetic-Tile, impossible "
                  "for a hard Dice of the same reading (IoU at most (100 + Dice) / 2); measured on Magnetic-Tile the "
                  "soft Dice runs below the hard one and every per-image figure far below the split's "
                  "(benchmarks/results/lsa-net-mt-cpu-before-after.md), so the paper's pair fits the split's IoU "
                  "with a soft Dice, and a per-image reading would put its IoU further from its Dice."
                  if self.spec.binary else
                  f"Mean IoU is the mean over the background and the {len(self.spec.classes)} classes (the paper's "
                  "table is binary: compare a binary recipe's). PA counts a pixel right only with its class; Dice "
                  "and defect IoU take every class as defect against the background.")
               + " The rows in brackets are what answering all background or all of the most common class would "
               "score.", ""]
        if self.cut:
            out += [f"{self.cut} test mask(s) held grey levels between 0 and 255 (anti-aliasing or JPEG damage): "
                    "cut at 128.", ""]
        if not self.spec.binary:
            names = self.spec.classes
            out += ["## IoU % per class", "",
                    markdown_table(["artifact", *names],
                                   [[r["artifact"], *[r["per_class"][c]["iou"] for c in names]] for r in rows]), "",
                    "Test pixels per class: " + ", ".join(f"{c} {rows[0]['per_class'][c]['pixels']}" for c in names)
                    + ". Colours in the pictures: " + ", ".join(f"{c} {n}" for c, (n, _) in zip(names, PALETTE))
                    + ".", ""]
        groups = list(rows[0]["per_group"])
        if len(groups) > 1:
            out += ["## Defect IoU % per group of the data", "",
                    markdown_table(["artifact", *groups],
                                   [[r["artifact"], *[r["per_group"][g]["defect_iou"] for g in groups]] for r in rows]),
                    "", "Images per group: " + ", ".join(f"{g} {rows[0]['per_group'][g]['images']}" for g in groups)
                    + " (a group without defect pixels scores no defect IoU unless something is predicted).", ""]
        if GRID in results.get("extras", []):
            out += ["## Masks on sample test images", "", f"![masks]({GRID})", "",
                    "First column: the image with its true defects outlined (white when binary, in the class's "
                    "colour when per class). Then each artifact's predicted defects filled, after the same host "
                    "post-processing.", ""]
        return out

    def sample_indices(self) -> list[int]:
        """Up to ``samples`` test images, spread over the groups, those with defects first."""
        order = sorted(range(len(self.truths)), key=lambda i: (not self.truths[i].any(), i))
        chosen: list[int] = []
        for k in sorted(set(self.groups)):
            chosen += [i for i in order if self.groups[i] == k][: max(1, -(-self.samples // len(set(self.groups))))]
        return sorted(chosen)[: self.samples]

    def write_extras(self, folder: Path, results: dict[str, Any]) -> list[str]:
        if not self.results or self.samples <= 0:
            return []
        labels = list(self.results)
        per_class = not self.spec.binary
        tiles = [[tile(self.images[i], self.size, truth=self.truths[i], per_class=per_class)]
                 + [tile(self.images[i], self.size, self.truths[i], self.results[lab][i].classes, per_class)
                    for lab in labels]
                 for i in self.sample_indices()]
        return [write_png(Path(folder) / GRID, grid(tiles, ["truth", *labels]))]
