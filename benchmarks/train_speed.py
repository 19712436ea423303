"""Training speed on this CPU: one recipe's real batches through FP32, bf16 autocast, and bf16 autocast with
channels-last memory, side by side in one run; and what preparing the batches costs beside the steps.

Usage: python benchmarks/train_speed.py --recipe benchmarks/recipes/lsa-net-mt-cpu.yaml --data ../shared/datasets/Magnetic-Tile
         [--steps 12] [--name train-speed-lsa-net-mt]

Each mode trains the same fresh model (seed 0) on the same batches of the recipe's first epoch: a warm-up step,
then ``--steps`` timed steps (forward, loss, backward, optimizer step), the batches prepared beforehand so only
the arithmetic is timed. The data row times preparing those batches alone (reading is done before: images are
held at the network's size). bf16 is only worth it where the CPU computes in it (AVX512-BF16, AMX): the
machine's instruction sets are recorded with the figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgekit.checkpoint import build_model
from edgekit.data.recipe_data import load_split
from edgekit.recipes import load_recipe
from edgekit.stages.train import make_optimizer, manifest_settings
from edgekit.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from run_tables import publish  # noqa: E402

MODES = (("fp32", False, False), ("bf16 autocast", True, False), ("bf16 autocast + channels-last", True, True))


def timed_steps(recipe, task, batches: list, bf16: bool, channels_last: bool) -> list[float]:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(recipe).to(memory_format=fmt).train()
    if hasattr(task, "prepare"):
        task.prepare(model, {"epochs": int(recipe.train["epochs"])})
    opt = make_optimizer(model, manifest_settings(recipe, None, None, 0, "cpu"))
    seconds = []
    for batch in batches:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = task.loss(model(batch[0].contiguous(memory_format=fmt)), batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        seconds.append(time.perf_counter() - t)
    return seconds[1:]                                      # the first step warms the kernels up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    recipe = load_recipe(args.recipe)
    task = get_task(recipe).training(recipe, load_split(recipe, args.data), 0)
    bs = int(recipe.train["batch_size"])
    loader = iter(task.batches(0, bs))
    t = time.perf_counter()
    batches = [next(loader) for _ in range(args.steps + 1)]
    data_s = (time.perf_counter() - t) / len(batches)
    rows, table = {}, []
    for label, bf16, cl in MODES:
        s = timed_steps(recipe, task, batches, bf16, cl)
        rows[label] = {"step_s_median": float(np.median(s)), "step_s": s}
    base = rows["fp32"]["step_s_median"]
    for label, r in rows.items():
        table.append([label, round(r["step_s_median"], 3), round(bs / r["step_s_median"], 1),
                      round(base / r["step_s_median"], 2)])
    table.append(["preparing a batch (data alone)", round(data_s, 3), round(bs / data_s, 1), None])
    publish(args.name, f"Training steps of {recipe.name} at {recipe.preprocess.size} px, batch {bs} "
            f"({args.threads} threads)", ["mode", "median s / step", "images / s", "speed-up vs FP32"], table,
            {"recipe": recipe.name, "batch_size": bs, "steps": args.steps, "threads": args.threads, "modes": rows,
             "data_s_per_batch": data_s})


if __name__ == "__main__":
    main()
