"""Classification figures: accuracy, per-class recall / precision / F1, confusion matrices."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import Runner
from edgekit.data.recipe_data import SplitData, read_images
from edgekit.plots import confusion_matrices
from edgekit.recipes import Recipe
from edgekit.report import markdown_table
from edgekit.tasks import postprocessor
from edgekit.stats import Answers
from edgekit.tasks.answers import DeployedAnswers
from edgekit.tasks.classification.metrics import metrics


CONFUSION = "confusion.png"


class ClassificationValidation(DeployedAnswers):
    headline = "accuracy"
    column = "accuracy %"
    paper_key = "accuracy"

    def __init__(self, recipe: Recipe, data: SplitData) -> None:
        self.classes = recipe.classes
        self.images = read_images(data.test, "reading test images")
        self.x = recipe.preprocess.batch(self.images)
        self.y = np.array([s.label for s in data.test])
        self.post = postprocessor(recipe)

    def evaluate(self, runner: Runner, label: str) -> dict[str, Any]:
        predicted = self._labels(runner, self.x, f"{label}: test split")
        return {**metrics(self.y, predicted, self.classes), "answers": Answers.right_or_wrong(predicted == self.y, predicted)}

    def score(self, runner: Runner, x: np.ndarray, desc: str) -> float:
        return 100.0 * float((self._labels(runner, x, desc) == self.y).mean())

    def _labels(self, runner: Runner, x: np.ndarray, desc: str) -> np.ndarray:
        return np.array([a.label for a in self.answers(runner, x, desc)])

    def report(self, results: dict[str, Any]) -> list[str]:
        classes = list(self.classes)
        out = ["## Per class (recall %)", ""]
        out += [markdown_table(["artifact", *classes],
                               [[r["artifact"], *[r["per_class"][c]["recall"] for c in classes]]
                                for r in results["rows"]]), ""]
        if CONFUSION in results.get("extras", []):
            out += [f"![confusion matrices]({CONFUSION})", ""]
        for r in results["rows"]:
            out += [f"### Confusion matrix: {r['artifact']} (rows true, columns predicted)", ""]
            out += [markdown_table(["", *classes], [[c, *r["confusion"][i]] for i, c in enumerate(classes)]), ""]
        return out

    def write_extras(self, folder: Path, results: dict[str, Any]) -> list[str]:
        return [confusion_matrices(Path(folder) / CONFUSION, {r["artifact"]: r["confusion"] for r in results["rows"]},
                                   self.classes)]
