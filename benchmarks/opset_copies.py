"""Do a device kit's opset-13 models answer as its opset-17 ones, on the test images?

TensorRT 8.0-8.4 (JetPack 4.6 and 5.0: Nano, Xavier) parse the kit's ``fp32.opset13.onnx`` and build
INT8 from it with the calibration cache. Without TensorRT, this compares on ONNX Runtime, image by image
over the recipe's test split:

- FP32: ``fp32.opset13.onnx`` against ``fp32.onnx`` (largest difference relative to the output's peak);
- INT8: ``fp32.opset13.onnx`` quantized with the kit's own calibration ranges (the scales the 8.x cache
  holds, as a Q/DQ model) against the kit's ``int8.onnx``: the same answers is what the route needs;

and prints a table of the task's headline figure and the differences, with JSON beside it::

    python benchmarks/opset_copies.py --run RUN_DIR --data NEU-DET [--split-file F] --name NAME
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgekit.artifacts import read_manifest, write_json
from edgekit.backends import get_backend
from edgekit.data.recipe_data import DataSource, load_split
from edgekit.recipes import load_recipe
from edgekit.report import markdown_table
from edgekit.int8 import qdq
from edgekit.tasks import get_task
from run_tables import provenance

RESULTS = Path(__file__).parent / "results"


def outputs(runner, x: np.ndarray) -> list[list[np.ndarray]]:
    return [runner.infer(xi[None]) for xi in x]


def peak_diff(ref: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> tuple[float, float]:
    """(largest, mean) over images of max |got - ref| / max |ref|, every output of the image together."""
    diffs = [max(float(np.abs(g - r).max()) for r, g in zip(rs, gs)) / max(max(float(np.abs(r).max()) for r in rs), 1e-12)
             for rs, gs in zip(ref, got)]
    return max(diffs), float(np.mean(diffs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a build's run folder (with compile/tensorrt-kit)")
    ap.add_argument("--recipe", default=None, help="the run's recipe (name or YAML; default: its build.json's)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split-file", type=Path, default=None)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    kit = args.run / "compile" / "tensorrt-kit"
    recipe = load_recipe(args.recipe or json.loads((args.run / "build.json").read_text())["recipe"])
    kit_info = json.loads((kit / "kit.json").read_text())
    copy = kit / kit_info["opset_copies"]["13"]
    settings = read_manifest(args.run / "quantize")["settings"]
    data = load_split(recipe, DataSource(args.data, split_file=args.split_file))
    task = get_task(recipe).validation(recipe, data)
    ort = get_backend("onnxruntime")
    with tempfile.TemporaryDirectory() as tmp:
        ranges = Path(tmp) / "ranges.json"
        shutil.copyfile(kit / "calibration_ranges.json", ranges)     # read, not calibrated again
        int8_13 = Path(tmp) / "int8.opset13.onnx"
        qdq.write(copy, int8_13, ranges, settings["method"], "s8", settings["per_channel"],
                  settings.get("reduce_range", False))
        files = {"fp32 (opset 17)": kit / "fp32.onnx", "fp32 (opset 13)": copy,
                 "int8 (opset 17)": kit / "int8.onnx", "int8 (opset 13, same ranges)": int8_13}
        runners = {label: ort.load(path, 2) for label, path in files.items()}
        raw = {label: outputs(r, task.x) for label, r in runners.items()}
        figures = {label: task.evaluate(r, label)[task.headline] for label, r in runners.items()}
    pairs = {"fp32 (opset 13)": "fp32 (opset 17)", "int8 (opset 13, same ranges)": "int8 (opset 17)"}
    rows = []
    for label in files:
        row = {"model": label, task.column: figures[label]}
        if label in pairs:
            worst, mean = peak_diff(raw[pairs[label]], raw[label])
            row.update({"vs": pairs[label], "max_rel_diff": worst, "mean_rel_diff": mean,
                        "same_figure": abs(figures[label] - figures[pairs[label]]) < 1e-9})
        rows.append(row)
    result = {**provenance(f"{recipe.name}: the kit's opset-{kit_info['opset']} models against its opset-17 ones"),
              "run": str(args.run), "recipe": recipe.name, "test_images": len(task.x), "kit_opset": kit_info["opset"],
              "rows": rows}
    table = markdown_table(["model", task.column, "vs", "max diff / peak", "mean diff / peak"],
                           [[r["model"], r[task.column], r.get("vs"), *(f"{r[k]:.1e}" if k in r else None
                                                                       for k in ("max_rel_diff", "mean_rel_diff"))]
                            for r in rows])
    print(table)
    write_json(RESULTS / f"{args.name}.json", result)
    (RESULTS / f"{args.name}.md").write_text(
        f"# {args.name}\n\n{__doc__.split('and prints')[0].split(chr(10), 2)[2].strip()}\n\n"
        f"Command: `python benchmarks/opset_copies.py --run RUN --data {args.data.name}"
        f"{' --split-file ' + str(args.split_file) if args.split_file else ''} --name {args.name}`. "
        f"{recipe.name}, {len(task.x)} test images, "
        f"{result['machine']['processor']} ({', '.join(result['machine']['isa'])}).\n\n{table}\n")


if __name__ == "__main__":
    main()
