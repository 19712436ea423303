"""INT8 settings side by side: calibration method x calibration-set size x accuracy bound, for a build's model.

For each setting the quantize stage runs as a build runs it (ranges, accuracy bound on the held-aside
images, NNCF's model for OpenVINO and the choice between them), then the portable Q/DQ model and NNCF's
model are scored on the run's test split and timed at batch 1 on OpenVINO, interleaved. Table on stdout,
JSON and Markdown in ``benchmarks/results/``; recipe defaults are chosen from it::

    python benchmarks/int8_sweep.py --run RUN --name sdc-squeezenet-mrf-int8-sweep
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from edgekit import calibration
from edgekit.backends import get_backend
from edgekit.data.recipe_data import load_split, recorded_source
from edgekit.errors import run_reporting
from edgekit.int8.accuracy import latency_ms
from edgekit.stages.quantize import FILES, NNCF, quantize
from edgekit.tasks import get_task
from run_tables import publish, run_arguments, run_recipe

def main() -> None:
    ap = run_arguments(__doc__)
    ap.add_argument("--methods", nargs="+", default=["minmax", "entropy", "percentile"])
    ap.add_argument("--per-class", type=int, nargs="+", default=[8, 16, 32], help="calibration images per class")
    ap.add_argument("--bounds", type=float, nargs="+", default=[], help="accuracy bounds (points) tried with the "
                    "recipe's method and size; 0 forces the per-layer search")
    args = ap.parse_args()
    recipe = run_recipe(args)
    source = recorded_source(args.run)
    split = load_split(recipe, source)
    test = get_task(recipe).validation(recipe, split)
    default_method = recipe.quantize.get("method", "minmax")
    default_size = recipe.quantize.get("calibration", {}).get("per_class", 16)
    default_bound = recipe.validate["max_drop"]["int8"]
    settings = [(m, n, default_bound) for m in args.methods for n in args.per_class]
    settings += [(default_method, default_size, b) for b in args.bounds]
    ov = get_backend("openvino")
    fp32 = args.run / "export" / "model.onnx"
    reference = test.evaluate(ov.load(fp32, args.threads), "fp32")[test.headline]
    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-sweep.") as tmp:
        for method, per_class, bound in settings:
            label = f"{method}, {per_class}/class, bound {bound:g}"
            print(f"--- {label}", file=sys.stderr)
            manifest = calibration.write(calibration.select(recipe, split, f"sweep-{per_class}", per_class),
                                         Path(tmp) / f"calib-{per_class}.yaml")
            bounded = dataclasses.replace(recipe, quantize={**recipe.quantize, "accuracy": {
                **(recipe.quantize.get("accuracy") or {}), "max_drop": bound}})
            out = Path(tmp) / label.replace(" ", "").replace(",", "-").replace("/", "per")
            res = quantize(bounded, fp32, manifest, source.root, out, method=method, data=split,
                           threads=args.threads, openvino=True, cache_dir=Path(tmp) / "cache")
            files = {"q/dq": out / FILES["int8"], "nncf": out / NNCF}
            figures = {k: test.evaluate(ov.load(f, args.threads), f"{label} {k}")[test.headline] for k, f in files.items()}
            ms = latency_ms(list(files.values()), args.threads, list(files))
            b, choice = res["accuracy_bound"], res["openvino_int8"]
            rows.append({"method": method, "per_class": per_class, "bound": bound,
                         "held_aside_fp32": b["fp32"], "held_aside_int8": b["final"],
                         "float_layers": len(b["kept_float"]), "nncf_float_layers": len(choice["accuracy_bound"]["kept_float"]),
                         "nncf_ranges": choice["method"],
                         "qdq_test": figures["q/dq"], "nncf_test": figures["nncf"],
                         "qdq_ms": ms["q/dq"], "nncf_ms": ms["nncf"], "chosen": choice["chosen"],
                         "seconds": res["seconds"]})
    headers = ["method", "images/class", "bound", "held-aside FP32 / INT8 (bounded)", "float layers Q/DQ / NNCF",
               "NNCF ranges", f"test {test.column} Q/DQ", "test NNCF", "Q/DQ ms", "NNCF ms", "chosen", "quantize s"]
    table = [[r["method"], r["per_class"], r["bound"], f"{r['held_aside_fp32']:.2f} / {r['held_aside_int8']:.2f}",
              f"{r['float_layers']} / {r['nncf_float_layers']}", r["nncf_ranges"], r["qdq_test"], r["nncf_test"],
              r["qdq_ms"], r["nncf_ms"], r["chosen"], r["seconds"]]
             for r in rows]
    title = f"{recipe.name}: INT8 settings (test FP32 {reference:.2f}, OpenVINO, batch 1, {args.threads} threads)"
    publish(args.name, title, headers, table, {"recipe": recipe.name, "run": str(args.run), "fp32_test": reference,
                                               "rows": rows})

if __name__ == "__main__":
    run_reporting(main)
