"""One call on a GPU machine: the Magnetic-Tile trainings of gpu_train.yaml (the four segdec-net supervision
modes, lsa-net and unet) at the recipes' own size with their `gpu:` profile, all at once on the one GPU, each
an `edgekit build` that trains, exports, quantizes to INT8 and validates; the results, reports, training
histories and INT8 models come back under --out.

Usage: python benchmarks/gpu_train.py --out DIR [--data DIR] [--epochs-scale 0.3] [--only NAME ...] [--dry-run]

On the device tool (the data does not travel from ../shared: copy it into an ignored folder and carry it):
    mkdir -p .device-data && cp -r ../shared/datasets/Magnetic-Tile .device-data/
    echo .device-data >> .git/info/exclude
    run(command="python benchmarks/gpu_train.py --data .device-data/Magnetic-Tile --out $OUT --epochs-scale 0.3",
        carry=[".device-data"], timeout_s=560)
``--epochs-scale`` shrinks every job's epochs to fit the time at hand (the plan's are the papers'); ``--dry-run``
writes the jobs' recipes and prints the commands without training (no GPU needed). Files over 16 MiB (what the
device tool brings back) are left out and named in the summary.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edgekit.errors import EdgekitError, run_reporting
from edgekit.recipes import load_recipe
from edgekit.report import markdown_table

HERE = Path(__file__).resolve().parent
PLAN = HERE / "gpu_train.yaml"
LIMIT = 16 * 2**20                    # the largest file the device tool brings back
BROUGHT = ("validate/results.json", "validate/report.md", "train/history.json", "train/manifest.json")


def jobs(plan: dict, only: list[str], scale: float, out: Path) -> list[dict]:
    """The plan's jobs (``only`` those named), each with its recipe written under ``out/recipes`` and checked."""
    chosen = [j for j in plan["jobs"] if not only or j["name"] in only]
    unknown = set(only) - {j["name"] for j in plan["jobs"]}
    if unknown:
        raise EdgekitError(f"{PLAN}: no job named {', '.join(sorted(unknown))}")
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    for job in chosen:
        path = out / "recipes" / f"{job['name']}.yaml"
        path.write_text(yaml.safe_dump({"extends": job["recipe"], "name": job["name"], **job.get("override", {})}))
        load_recipe(path)                                            # a bad override fails here, before any work
        job.update(recipe_file=path, epochs_run=max(1, round(job["epochs"] * scale)), split_file=HERE / job["split"])
        if not job["split_file"].is_file():
            raise EdgekitError(f"{PLAN}: {job['name']}: split file {job['split_file']} not found")
    return chosen


def command(job: dict, data: Path, target: str, work: Path) -> list[str]:
    return [sys.executable, "-m", "edgekit", "build", str(job["recipe_file"]), "--target", target, "--data", str(data),
            "--split-file", str(job["split_file"]), "--epochs", str(job["epochs_run"]), "--no-prune",
            "--out", str(work / job["name"]), "--threads", "2"]


def bring_back(job: dict, work: Path, out: Path) -> dict:
    """Copy what a job made that is worth having to ``out/NAME``; the INT8 model only when small enough."""
    runs = sorted((work / job["name"]).glob("*/build.json"))
    dest = out / job["name"]
    dest.mkdir(parents=True, exist_ok=True)
    if not runs:
        return {"brought": [], "left_out": []}
    run = runs[0].parent
    brought, left = [], []
    int8 = sorted(run.glob("compile/*int8*/model.onnx"))
    for rel in [*BROUGHT, *(str(p.relative_to(run)) for p in int8),
                *(str(p.parent.relative_to(run)) + "/pipeline.json" for p in int8)]:
        src = run / rel
        if not src.is_file():
            continue
        if src.stat().st_size > LIMIT:
            left.append(f"{rel} ({src.stat().st_size / 2**20:.1f} MiB)")
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
        brought.append(rel)
    return {"brought": brought, "left_out": left, "run": str(run)}


def summary_row(job: dict, out: Path, rc: int, seconds: float) -> list:
    path = out / job["name"] / "validate/results.json"
    results = json.loads(path.read_text()) if path.is_file() else {"rows": [], "metric": {"key": None}}
    rows, key = results["rows"], results["metric"]["key"]
    fp32 = rows[0][key] if rows else None
    int8 = next((r[key] for r in rows if r["precision"] == "int8"), None)
    return [job["name"], job["epochs_run"], round(seconds / 60, 1), key, fp32, int8, rc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="Magnetic-Tile (default: the plan's, from the repository root)")
    ap.add_argument("--epochs-scale", type=float, default=1.0)
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgekit-gpu-train"), help="the runs' own folders")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    plan = yaml.safe_load(PLAN.read_text())
    data = args.data or HERE.parent / plan["data"]
    if not data.is_dir():
        raise EdgekitError(f"{data}: no such folder (give --data; on the device tool, carry a copy of the data)")
    chosen = jobs(plan, args.only, args.epochs_scale, args.out)
    commands = {j["name"]: command(j, data, plan["target"], args.work) for j in chosen}
    if args.dry_run:
        for cmd in commands.values():
            print(" ".join(cmd))
        return
    import torch

    if not torch.cuda.is_available():
        raise EdgekitError("no CUDA device: gpu_train.py trains with the recipes' gpu: profile (--dry-run to check "
                           "the plan here)")
    started, procs = time.perf_counter(), {}
    for job in chosen:                                    # all at once: one GPU has room for every job
        (args.out / job["name"]).mkdir(parents=True, exist_ok=True)
        log = open(args.out / job["name"] / "build.log", "w")
        procs[job["name"]] = (subprocess.Popen(commands[job["name"]], stdout=log, stderr=subprocess.STDOUT,
                                               env={**os.environ, "PYTHONPATH": str(HERE.parent)}), log)
    table, record = [], {}
    for job in chosen:
        proc, log = procs[job["name"]]
        rc = proc.wait()
        log.close()
        seconds = time.perf_counter() - started
        record[job["name"]] = {"rc": rc, "epochs": job["epochs_run"], "seconds_to_finish": round(seconds, 1),
                               **bring_back(job, args.work, args.out)}
        table.append(summary_row(job, args.out, rc, seconds))
    title = f"GPU trainings on Magnetic-Tile ({torch.cuda.get_device_name(0)}, epochs x {args.epochs_scale})"
    heads = ["job", "epochs", "minutes to finish", "figure", "FP32", "INT8", "exit"]
    markdown = f"# {title}\n\n{markdown_table(heads, table)}\n"
    print(markdown)
    (args.out / "summary.md").write_text(markdown)
    (args.out / "summary.json").write_text(json.dumps({"title": title, "columns": heads, "rows": table,
                                                       "jobs": record}, indent=2))


if __name__ == "__main__":
    run_reporting(main)
