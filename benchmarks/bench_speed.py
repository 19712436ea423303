"""PyTorch eager FP32 vs ONNX Runtime and OpenVINO FP32/INT8 for a build, post-processing included.

Usage:
    python benchmarks/bench_speed.py --recipe raf-ssd [--run RUN [RUN ...]] [--build] ...

Several runs are timed side by side: e.g. a pruned build and a ``--no-prune`` build of the same
trained model; variants of a pruned run are labelled with the pruning ratio, and the baseline
is always PyTorch eager FP32 of the first run's unpruned trained model.
``--build`` first runs ``edgekit build RECIPE --target intel-cpu`` (with --data/--pretrained if
given). Every variant is timed as the line runs it: inference on real test images of the run's
data, then the recipe's host post-processing (argmax, decoding + NMS for a detector, threshold +
connected components for a segmenter). The
variants are timed in one process, interleaved over several rounds, with the same thread count;
the table gives each variant's throughput as a ratio to PyTorch eager FP32 at the same batch
size. Results go to benchmarks/results/<name>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgekit import calibration
from edgekit.artifacts import read_manifest, write_json
from edgekit.int8 import openvino_nncf
from edgekit.backends import get_backend
from edgekit.backends.pytorch import TorchRunner
from edgekit.checkpoint import load_model
from edgekit.data.recipe_data import load_split, read_images, recorded_source
from edgekit.errors import EdgekitError, run_reporting
from edgekit.recipes import load_recipe
from edgekit.report import markdown_table, print_table
from edgekit.tasks import get_task, postprocessor
from edgekit.timing import measure
from run_tables import provenance

HERE = Path(__file__).resolve().parent


def pruned_ratio(run: Path) -> float | None:
    """The pruning ratio of the model the run's last build exported (None: not pruned, or pruning declined)."""
    build = json.loads((run / "build.json").read_text())
    if not any(st["stage"] == "prune" for st in build["stages"]):
        return None
    prune = read_manifest(run / "prune")
    return prune["settings"]["prune"]["ratio"] if prune["results"].get("decision", {"kept": True})["kept"] else None


def nncf_by_hand(run: Path, recipe, folder: Path) -> Path:
    """What a user gets in five lines: default ``nncf.quantize`` on the build's FP32 model and its calibration
    images, for OpenVINO (the row edgekit's own INT8 is held against)."""
    target = folder / f"{run.name}-nncf-by-hand.xml"
    if not target.is_file():
        _, images = calibration.load(run / "calibration.yaml", recorded_source(run).root)
        openvino_nncf.quantize(run / "quantize" / "fp32.onnx", calibration.batches(recipe, images), target)
    return target


def variants(runs: list[Path], threads: int, batch: int, recipe, scratch: Path) -> list[tuple[str, object]]:
    """PyTorch eager FP32 of the (unpruned) trained model first, the baseline; then every run's
    pruned eager model, its ONNX Runtime / OpenVINO FP32 and INT8 files, the OpenVINO INT8 artifact
    the build compiled (Q/DQ or NNCF, as the quantize stage chose) and NNCF by hand."""
    shape = (batch, *recipe.preprocess.input_shape)
    out = []
    ckpt = runs[0] / "train" / "model.pt"
    if ckpt.is_file():
        out.append(("pytorch eager fp32", TorchRunner(load_model(recipe, ckpt), shape, threads)))
    ort, ov = get_backend("onnxruntime"), get_backend("openvino")
    for run in runs:
        ratio = pruned_ratio(run)
        tag = f", pruned {ratio:.0%}" if ratio else ""
        q = run / "quantize"
        if ratio:
            out.append((f"pytorch eager fp32{tag}", TorchRunner(load_model(recipe, run / "prune" / "model.pt"), shape,
                                                               threads)))
        out += [
            (f"onnxruntime fp32{tag}", ort.load(q / "fp32.onnx", threads, batch)),
            (f"onnxruntime int8 (s8 q/dq){tag}", ort.load(q / "int8.onnx", threads, batch)),
            (f"onnxruntime int8 (u8 q/dq){tag}", ort.load(q / "int8-u8.onnx", threads, batch)),
            (f"openvino fp32{tag}", ov.load(q / "fp32.onnx", threads, batch)),
            (f"openvino int8 (s8 q/dq){tag}", ov.load(q / "int8.onnx", threads, batch)),
        ]
        built = run / "compile" / "openvino-int8"
        if (built / "model.xml").is_file():
            how = read_manifest(built)["settings"]["int8_encoding"]
            out.append((f"openvino int8 (the build's artifact, {how}){tag}", ov.load(built / "model.xml", threads, batch)))
        out.append((f"openvino int8 (nncf by hand){tag}", ov.load(nncf_by_hand(run, recipe, scratch), threads, batch)))
    return out


def test_images(run: Path, recipe, count: int) -> np.ndarray:
    """``count`` pre-processed test images of the run's data (repeated if the split is smaller)."""
    test = load_split(recipe, recorded_source(run)).test
    images = read_images([test[i % len(test)] for i in range(count)], "reading test images")
    return recipe.preprocess.batch(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="sdc-squeezenet-mrf", help="recipe name or YAML file")
    ap.add_argument("--quick", action="store_true", help="the recipe's quick profile (a --quick build's runs)")
    ap.add_argument("--run", type=Path, nargs="+", help="build run folder(s), timed side by side; the first "
                    "one's trained checkpoint is the PyTorch baseline (default runs/<recipe>--intel-cpu)")
    ap.add_argument("--build", action="store_true", help="run `edgekit build` first")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--pretrained", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0, help="time budget per variant and round")
    ap.add_argument("--name", help="results file name (default: <recipe>-<date>)")
    ap.add_argument("--accuracy", action="store_true", help="also each variant's test-split figure (batch 1)")
    args = ap.parse_args()

    recipe = load_recipe(args.recipe, quick=args.quick)
    runs = args.run or [Path("runs") / f"{recipe.name}{'-quick' if args.quick else ''}--intel-cpu"]
    run = runs[0]
    if not args.build:   # every run folder checked before any timing starts
        for r in runs:
            recorded_source(r)
            if not (r / "quantize" / "fp32.onnx").is_file():
                raise EdgekitError(f"{r}: no quantize/fp32.onnx (an unfinished or foreign run folder)")
    if args.build:
        cmd = ["edgekit", "build", args.recipe, "--target", "intel-cpu", "--out", str(run.parent)]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--data", str(args.data)] if args.data else []
        cmd += ["--pretrained", str(args.pretrained)] if args.pretrained else []
        subprocess.run(cmd, check=False)
    post = postprocessor(recipe)
    rows = []
    scratch_dir = tempfile.TemporaryDirectory(prefix="bench-speed.")     # NNCF by hand's IR, made once
    scratch = Path(scratch_dir.name)
    figures: dict[str, float] = {}
    for batch in args.batches:
        runners = variants(runs, args.threads, batch, recipe, scratch)
        if args.accuracy and batch == 1:
            task = get_task(recipe).validation(recipe, load_split(recipe, recorded_source(run)))
            figures = {name: task.evaluate(r, name)[task.headline] for name, r in runners}
        x = test_images(run, recipe, batch)
        timed = [(name, lambda b, r=r: post(r.infer(b))) for name, r in runners]
        outputs = runners[0][1].infer(x)
        timed.append(("post-processing only", lambda b: post(outputs)))
        rounds: dict[str, list[dict]] = {name: [] for name, _ in timed}
        for _ in range(args.rounds):  # interleaved so drift hits every variant alike
            for name, fn in timed:
                rounds[name].append(measure(fn, x, warmup=5, iters=400, max_seconds=args.seconds))
        for name, res in rounds.items():
            best = sorted(res, key=lambda r: r["p50_ms"])[len(res) // 2]  # median round by p50
            rows.append({"variant": name, **best, "figure": figures.get(name) if batch == 1 else None})
        base = next((r for r in rows if r["batch"] == batch and r["variant"].startswith("pytorch")), None)
        for r in rows:
            if r["batch"] == batch and r["variant"] != "post-processing only":
                r["x_pytorch_fp32"] = r["throughput_fps"] / base["throughput_fps"] if base else None

    scratch_dir.cleanup()
    headers = ["variant", "batch", "p50 ms", "p90 ms", "p99 ms", "fps", "x PyTorch FP32"]
    headers += ["test figure (b=1)"] if args.accuracy else []
    table = [[r["variant"], r["batch"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["throughput_fps"],
              r.get("x_pytorch_fp32")] + ([r["figure"]] if args.accuracy else []) for r in rows]
    print_table(f"{recipe.name}: {args.threads} threads, post-processing included", headers, table)
    name = args.name or f"{recipe.name}-{dt.date.today().isoformat()}"
    title = f"{recipe.name} speed, {args.threads} threads, post-processing included"
    results = {**provenance(title), "recipe": recipe.name, "runs": [str(r) for r in runs], "threads": args.threads,
               "rounds": args.rounds, "rows": rows}
    write_json(HERE / "results" / f"{name}.json", results)
    (HERE / "results" / f"{name}.md").write_text(
        f"# {title}\n\n"
        f"Machine: {results['machine']}\n\nCommand: `{results['command']}`\n\n{markdown_table(headers, table)}\n"
    )
    print(f"results: {HERE / 'results' / name}.json / .md")


if __name__ == "__main__":
    run_reporting(main)
