"""Score finished runs' FP32 models with this edgekit's figures on the same test images, side by side: a
before/after comparison of trainings whatever code trained them.

Usage: python benchmarks/score_runs.py --recipe RECIPE --data DIR [--split-file FILE] --name NAME LABEL=RUN ...

Each RUN (an `edgekit build` run folder, or a folder holding one) is scored through its exported FP32 model
(``quantize/fp32.onnx``, the architecture it was trained with baked in) on ONNX Runtime, by the validation of
RECIPE as this edgekit has it: the test masks read and resized as it reads them, every figure in every reading
(segmentation: over the split and per image, hard and soft Dice; segmentation+decision: AP, AUC, F, FP and FN
at the best-F threshold and at the recipe's). The first LABEL is the reference: each other run's change in the
recipe's headline figure is given with its paired bootstrap interval over the test images, and how many images
it answers better or worse (segmentation: more or fewer right pixels; decision: right where the other was
wrong at the recipe's threshold). The recipe's paper figures close the table, for scale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgekit.backends import get_backend
from edgekit.data.recipe_data import DataSource, load_split
from edgekit.errors import EdgekitError, run_reporting
from edgekit.recipes import load_recipe
from edgekit.stats import paired_drop
from edgekit.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from run_tables import publish  # noqa: E402

PAPER = {"ap": "ap", "auc": "auc", "f_best": "f", "fp_best": "fp", "fn_best": "fn", "pixel_accuracy": "pixel_accuracy",
         "dice": "dice", "mean_iou": "miou"}


def fp32_model(run: Path) -> Path:
    found = sorted(Path(run).glob("quantize/fp32.onnx")) or sorted(Path(run).glob("*/quantize/fp32.onnx"))
    if not found:
        raise EdgekitError(f"{run}: no quantize/fp32.onnx (not a finished build run folder)")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split-file", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    ap.add_argument("runs", nargs="+", help="LABEL=RUN, the first the reference")
    args = ap.parse_args()
    runs = [r.split("=", 1) for r in args.runs]
    if any(len(r) != 2 for r in runs):
        raise EdgekitError("runs are given as LABEL=RUN")
    models = {label: fp32_model(Path(run)) for label, run in runs}
    recipe = load_recipe(args.recipe)
    validation = get_task(recipe).validation(recipe, load_split(recipe, DataSource(args.data, None, args.split_file)))
    keys = [k for k, _ in validation.figures]
    rows, answers = {}, {}
    for label, model in models.items():
        row = validation.evaluate(get_backend("onnxruntime").load(model, args.threads), label)
        answers[label] = row.pop("answers")
        rows[label] = {"model": str(model), **{k: row.get(k) for k in keys}}
    reference = runs[0][0]
    key = validation.headline
    changes = {label: paired_drop(answers[reference], answers[label], 0.0) for label in models if label != reference}
    table = [[label, *[rows[label][k] for k in keys],
              None if label == reference else f"{-changes[label]['drop']:+.2f} [{-changes[label]['high']:+.2f}, "
                                              f"{-changes[label]['low']:+.2f}]",
              None if label == reference else f"{changes[label]['better']} / {changes[label]['worse']}"]
             for label in models]
    paper = recipe.paper
    table.append([f"paper ({paper.get('ref', '')}, {paper.get('dataset', '')})",
                  *[paper.get(PAPER[k]) if k in PAPER else None for k in keys], None, None])
    heads = [h for _, h in validation.figures]
    n = len(validation.x)
    publish(args.name, f"{recipe.name}: runs scored alike on {n} test images (one image = {100 / n:.2f} points of a "
            f"per-image figure)", ["run", *heads, f"{validation.column} change vs {reference} [95 % interval]",
                                   "images right more / less often"], table,
            {"recipe": recipe.name, "headline": key, "images": n, "runs": rows,
             "changes": {k: {m: v for m, v in c.items() if m != "one_image"} for k, c in changes.items()}})


if __name__ == "__main__":
    run_reporting(main)
