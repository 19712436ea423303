"""A recipe's data: its reader applied to a folder, and the recipe's seeded train/test split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.data.images import read_grey
from edgekit.data.neu import Dataset, Sample, load_neu
from edgekit.data.splits import stratified_split
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.recipes import Recipe


@dataclass
class SplitData:
    dataset: Dataset
    train: list[Sample]
    test: list[Sample]

    def describe(self) -> dict:
        return {
            "root": str(self.dataset.root),
            "images": len(self.dataset.samples),
            "train": len(self.train),
            "test": len(self.test),
            "per_class": self.dataset.counts(),
            "notes": self.dataset.notes,
        }


def load_split(recipe: Recipe, root: Path) -> SplitData:
    if recipe.data.get("format", "neu") != "neu":
        raise EdgekitError(f"{recipe.path}: data.format {recipe.data['format']!r} is not supported")
    dataset = load_neu(root, recipe.classes, with_boxes=recipe.task == "detection")
    split = recipe.data.get("split", {})
    train_idx, test_idx = stratified_split(dataset.labels(), split.get("test_fraction", 0.2), split.get("seed", 0))
    return SplitData(dataset, [dataset.samples[i] for i in train_idx], [dataset.samples[i] for i in test_idx])


def read_images(samples: list[Sample], desc: str = "reading images") -> list[np.ndarray]:
    return [read_grey(s.path) for s in bar(samples, desc)]
