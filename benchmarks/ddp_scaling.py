"""Training steps per second on 1, 2, ... processes (torchrun, DistributedDataParallel), side by side in one run.

Each row is ``edgekit train RECIPE --data DATA --epochs E --nproc N`` in its own folder, the same recipe, data,
seed and global batch; steps per second are read from the run's own history (the optimizer steps of each
epoch over the time its batches took, evaluation and checkpoints left out), over the epochs after the first
(warm-up). On a CPU the processes share its cores (gloo: each process gets cores / N threads, as torchrun
sets it); on a GPU machine the same call puts one process on each GPU (NCCL)::

    python benchmarks/ddp_scaling.py --recipe sdc-squeezenet-mrf --data ../shared/datasets/NEU-DET \\
        --split-file benchmarks/splits/neu-det-test.txt --epochs 3 --nproc 1 2 --name ddp-scaling-sdc-cpu
    python benchmarks/ddp_scaling.py ... --nproc 1 2 4 8 --name ddp-scaling-sdc-gpu     # an 8-GPU machine

Table on stdout, JSON and Markdown in ``benchmarks/results/``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from run_tables import publish


def train(args: argparse.Namespace, nproc: int, out: Path) -> dict:
    command = [sys.executable, "-m", "edgekit", "train", args.recipe, "--data", str(args.data), "--out", str(out),
               "--epochs", str(args.epochs), "--nproc", str(nproc)]
    if args.split_file:
        command += ["--split-file", str(args.split_file)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "EDGEKIT_NO_PROGRESS": "1"})
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    history = json.loads((out / "history.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    results = manifest["results"]
    batch = (results.get("distributed") or {}).get("global_batch", manifest["settings"]["batch_size"])
    timed = history[1:] or history
    rate = statistics.mean(h["steps"] / h["step_seconds"] for h in timed)
    return {"processes": nproc, "steps_per_epoch": history[0]["steps"], "steps_per_s": round(rate, 3),
            "epochs_timed": len(timed), "images_per_s": round(rate * batch, 1),
            "final_loss": round(history[-1]["loss"], 4), "headline": round(results["headline"]["value"], 2),
            "metric": results["headline"]["metric"], "wall_s": round(wall, 1),
            "torch_threads": results["torch_threads"],
            "device": results["device"], "layout": results.get("distributed")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split-file", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [train(args, n, Path(tmp) / f"nproc{n}") for n in args.nproc]
    base = rows[0]["steps_per_s"]
    for r in rows:
        r["speedup"] = round(r["steps_per_s"] / base, 2)
    headers = ["processes", "steps/epoch", "steps/s", "x 1 process", "images/s", "torch threads", "device",
               f"final {rows[0]['metric']}", "final loss", "wall s"]
    table = [[r["processes"], r["steps_per_epoch"], r["steps_per_s"], r["speedup"], r["images_per_s"],
              r["torch_threads"], r["device"], r["headline"], r["final_loss"], r["wall_s"]] for r in rows]
    title = (f"{args.recipe}: training steps per second by processes ({args.epochs} epochs, the first not timed; "
             f"{os.cpu_count()} CPU cores, {torch.cuda.device_count()} GPUs)")
    if args.name:
        publish(args.name, title, headers, table, {"recipe": args.recipe, "data": str(args.data), "rows": rows})
    else:
        from edgekit.report import print_table

        print_table(title, headers, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
