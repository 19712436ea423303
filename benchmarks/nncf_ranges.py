"""NNCF's activation range estimators side by side on a build's FP32 model and calibration images.

``nncf.quantize`` by default sets each activation's range to the mean over the calibration images of each
image's min and max; edgekit passes the recipe's calibration method instead (min-max: NNCF's global MINMAX,
entropy: its HISTOGRAM search, percentile: the mean of each image's percentile). For each estimator the
table gives the test figure, how far the model's first output moves from FP32 (mean |INT8 - FP32| over
mean |FP32|, on the test images) and the batch-1 OpenVINO latency, interleaved::

    python benchmarks/nncf_ranges.py --run RUN --name sdc-squeezenet-mrf-neu-30-nncf-ranges
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgekit import calibration
from edgekit.backends import get_backend
from edgekit.data.recipe_data import load_split, recorded_source
from edgekit.errors import run_reporting
from edgekit.int8 import openvino_nncf, ranges
from edgekit.int8.accuracy import latency_ms
from edgekit.tasks import get_task
from run_tables import publish, run_arguments, run_recipe

ESTIMATORS = [None, *openvino_nncf.RANGES]          # None: NNCF's default


def output_error(runner, reference: list[np.ndarray], x: np.ndarray) -> float:
    """Mean |output - FP32 output| over mean |FP32 output|, first output, over the images ``x``."""
    out = [runner.infer(image[None])[0] for image in x]
    return float(np.mean([np.abs(o - r).mean() for o, r in zip(out, reference)]) /
                 np.mean([np.abs(r).mean() for r in reference]))


def main() -> None:
    args = run_arguments(__doc__).parse_args()
    recipe = run_recipe(args)
    source = recorded_source(args.run)
    test = get_task(recipe).validation(recipe, load_split(recipe, source))
    manifest, images = calibration.load(args.run / "calibration.yaml", source.root)
    batches = calibration.batches(recipe, ranges.canonical_order(images, [e["sha256"] for e in manifest["images"]]))
    percentile = recipe.quantize.get("percentile")
    fp32 = args.run / "quantize" / "fp32.onnx"
    ov = get_backend("openvino")
    fp32_runner = ov.load(fp32, args.threads)
    reference = [fp32_runner.infer(image[None])[0] for image in test.x]
    fp32_figure = test.evaluate(fp32_runner, "fp32")[test.headline]
    rows, files = [], {}
    with tempfile.TemporaryDirectory(prefix="nncf-ranges.") as tmp:
        for method in ESTIMATORS:
            label = "NNCF default" if method is None else f"{method} ({openvino_nncf.RANGES[method]})"
            files[label] = Path(tmp) / f"{method}.xml"
            record = openvino_nncf.quantize(fp32, batches, files[label], method, percentile)
            runner = ov.load(files[label], args.threads)
            rows.append({"estimator": label, "activation_ranges": record["activation_ranges"],
                         "test": test.evaluate(runner, label)[test.headline],
                         "output_error": output_error(runner, reference, test.x)})
        ms = latency_ms(list(files.values()), args.threads, list(files))
    for row in rows:
        row["latency_ms"] = ms[row["estimator"]]
    headers = ["activation ranges", f"test {test.column}", "output error vs FP32", "OpenVINO ms (b=1)"]
    table = [[r["estimator"], r["test"], f"{100 * r['output_error']:.1f} %", r["latency_ms"]] for r in rows]
    title = (f"{recipe.name}: NNCF activation ranges ({len(batches)} calibration images, test FP32 "
             f"{fp32_figure:.2f}, {args.threads} threads)")
    publish(args.name, title, headers, table, {"recipe": recipe.name, "run": str(args.run), "fp32_test": fp32_figure,
                                               "rows": rows})

if __name__ == "__main__":
    run_reporting(main)
