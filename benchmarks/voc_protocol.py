"""A detector's mAP under two protocols, on the same detections: the VOC devkit's (difficult objects
left out of recall, detections on them ignored; what edgekit reports) and the earlier count, where
every object counted. Shows what the protocol alone moves in a recorded figure.

Usage: python benchmarks/voc_protocol.py RUN NAME
Writes results/NAME.json and .md.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.artifacts import write_json
from edgekit.backends import get_backend
from edgekit.data.recipe_data import load_split, read_images, recorded_source
from edgekit.errors import EdgekitError, run_reporting
from edgekit.recipes import load_recipe
from edgekit.report import markdown_table, print_table
from run_tables import provenance
from edgekit.stages.validate import runnable
from edgekit.tasks import postprocessor
from edgekit.tasks.detection.metrics import GroundTruth, voc_map

HERE = Path(__file__).resolve().parent


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, name = Path(sys.argv[1]), sys.argv[2]
    recipe = load_recipe(json.loads((run / "build.json").read_text())["recipe"]) if (run / "build.json").is_file() \
        else None
    source = recorded_source(run)
    if recipe is None or recipe.task != "detection":
        raise EdgekitError(f"{run}: not a detection build run")
    test = load_split(recipe, source).test
    images = read_images(test, "reading test images")
    x = recipe.preprocess.batch(images)
    devkit = GroundTruth.for_images(test, images)
    every = [replace(g, difficult=np.zeros(len(g.labels), bool)) for g in devkit]
    post = postprocessor(recipe)
    artifacts = [("fp32 (onnxruntime)", "onnxruntime", run / "quantize" / "fp32.onnx")]
    artifacts += [(b.label, b.backend, b.file) for b in (runnable(p) for p in sorted((run / "compile").glob("*-int8")))]
    rows = []
    for label, backend, path in artifacts:
        runner = get_backend(backend).load(path, 2)
        dets = [post(runner.infer(xi[None]))[0] for xi in x]
        a, b = voc_map(devkit, dets, recipe.classes), voc_map(every, dets, recipe.classes)
        rows.append({"artifact": label, "devkit_voc07": a["map_voc07"], "every_object_voc07": b["map_voc07"],
                     "devkit_all_point": a["map_all_point"], "every_object_all_point": b["map_all_point"],
                     "per_class_devkit": a["voc07"], "per_class_every_object": b["voc07"],
                     "difficult_per_class": a["difficult_per_class"]})
    headers = ["artifact", "VOC07 devkit", "VOC07 every object", "all-point devkit", "all-point every object"]
    table = [[r["artifact"], r["devkit_voc07"], r["every_object_voc07"], r["devkit_all_point"],
              r["every_object_all_point"]] for r in rows]
    print_table(f"{recipe.name}: mAP@0.5 % on {len(test)} test images", headers, table)
    hard = rows[0]["difficult_per_class"]
    title = f"{name}: the VOC devkit protocol against counting every object"
    record = {**provenance(title), "run": str(run), "recipe": recipe.name, "test_images": len(test), "rows": rows}
    write_json(HERE / "results" / f"{name}.json", record)
    (HERE / "results" / f"{name}.md").write_text(
        f"# {title}\n\n"
        f"Run `{run}`, {len(test)} test images; difficult objects in them: "
        + ", ".join(f"{c} {n}" for c, n in hard.items() if n) + f" ({sum(hard.values())} in all).\n\n"
        + markdown_table(headers, table) + "\n")
    print(f"wrote {HERE / 'results' / name}.json and .md")


if __name__ == "__main__":
    run_reporting(main)
