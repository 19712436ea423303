"""edgekit's accuracy-bounded INT8 (the portable Q/DQ model, and the model an OpenVINO target gets) against
NNCF's ``quantize_with_accuracy_control`` on the same classifier, calibration images, held-aside images and bound.

Both start from the build's FP32 model; both are held to the same drop on the same held-aside training
images (never the test split); both results are then scored on the run's test split and timed at batch 1
on OpenVINO, interleaved. Classification recipes (the validation function scores accuracy)::

    python benchmarks/accuracy_control.py --run RUN --bound 0.5 --name sdc-squeezenet-mrf-accuracy-control
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from edgekit import calibration
from edgekit.backends import get_backend
from edgekit.data.recipe_data import load_split, recorded_source
from edgekit.errors import EdgekitError, run_reporting
from edgekit.int8.accuracy import latency_ms, weighted_layers
from edgekit.stages.quantize import FILES, NNCF, quantize
from edgekit.tasks import get_task
from run_tables import publish, run_arguments, run_recipe

def nncf_accuracy_control(fp32: Path, calib: list[np.ndarray], held_x: np.ndarray, held_y: np.ndarray, bound: float,
                          out: Path) -> None:
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)

    def accuracy(compiled, items) -> float:      # percent, as edgekit's bound is in points
        hits = [int(np.argmax(compiled(x[None])[0]) == y) for x, y in items]
        return 100.0 * float(np.mean(hits))

    model = nncf.quantize_with_accuracy_control(
        ov.convert_model(str(fp32)), nncf.Dataset(calib), nncf.Dataset(list(zip(held_x, held_y))), accuracy,
        max_drop=bound, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calib))
    ov.save_model(model, str(out), compress_to_fp16=False)


def main() -> None:
    ap = run_arguments(__doc__)
    ap.add_argument("--bound", type=float, default=0.5, help="points of accuracy INT8 may lose on the held-aside images")
    args = ap.parse_args()
    recipe = run_recipe(args)
    if recipe.task != "classification":
        raise EdgekitError(f"{recipe.path}: this comparison scores classifiers (task {recipe.task!r})")
    recipe = dataclasses.replace(recipe, quantize={**recipe.quantize, "accuracy": {
        **(recipe.quantize.get("accuracy") or {}), "max_drop": args.bound}})
    source = recorded_source(args.run)
    split = load_split(recipe, source)
    manifest_path = args.run / "calibration.yaml"
    manifest, images = calibration.load(manifest_path, source.root)
    held = get_task(recipe).validation(recipe, calibration.held_aside(recipe, split, manifest, 16, 1))
    test = get_task(recipe).validation(recipe, split)
    fp32 = args.run / "export" / "model.onnx"
    ov = get_backend("openvino")
    rows = []
    with tempfile.TemporaryDirectory(prefix="accuracy-control.") as tmp:
        t0 = time.perf_counter()
        res = quantize(recipe, fp32, manifest_path, source.root, Path(tmp) / "edgekit", data=split,
                       threads=args.threads, cache_dir=Path(tmp) / "cache", openvino=True)
        edgekit_s = time.perf_counter() - t0
        chosen = res["openvino_int8"]["chosen"]
        t0 = time.perf_counter()
        theirs = Path(tmp) / "nncf-accuracy-control.xml"
        nncf_accuracy_control(fp32, calibration.batches(recipe, images), held.x, held.y, args.bound, theirs)
        nncf_s = time.perf_counter() - t0
        models = {"edgekit accuracy-bounded Q/DQ": (Path(tmp) / "edgekit" / FILES["int8"],
                                                    len(res["accuracy_bound"]["kept_float"]), edgekit_s),
                  f"edgekit's OpenVINO INT8 (the build's choice: {chosen})": (
                      Path(tmp) / "edgekit" / (NNCF if chosen == "nncf" else FILES["int8"]), None, edgekit_s),
                  "NNCF quantize_with_accuracy_control": (theirs, None, nncf_s)}
        ms = latency_ms([path for path, _, _ in models.values()], args.threads, list(models))
        layers = len(weighted_layers(onnx.load(str(fp32))))
        for label, (path, floats, seconds) in models.items():
            runner = ov.load(path, args.threads)
            rows.append({"method": label, "held_aside": held.evaluate(runner, label)[held.headline],
                         "test": test.evaluate(runner, label)[test.headline],
                         "latency_ms": ms[label], "seconds": round(seconds, 1), "float_layers": floats})
    fp32_runner = ov.load(fp32, args.threads)
    reference = {"held_aside": held.evaluate(fp32_runner, "fp32")[held.headline],
                 "test": test.evaluate(fp32_runner, "fp32")[test.headline]}
    headers = ["method", "float layers", "held-aside %", "test %", "OpenVINO ms (b=1)", "seconds"]
    table = [[r["method"], "—" if r["float_layers"] is None else f"{r['float_layers']} of {layers}",
              r["held_aside"], r["test"], r["latency_ms"], r["seconds"]] for r in rows]
    title = (f"{recipe.name}: accuracy-bounded INT8, bound {args.bound:g} points "
             f"(FP32 held-aside {reference['held_aside']:.2f}, test {reference['test']:.2f})")
    publish(args.name, title, headers, table, {"recipe": recipe.name, "run": str(args.run), "bound": args.bound,
                                               "fp32": reference, "rows": rows})

if __name__ == "__main__":
    run_reporting(main)
