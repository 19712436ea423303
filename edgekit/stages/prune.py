"""Prune + fine-tune: remove channels from a trained model, train it back, record what it cost.

The recipe's ``prune`` section says how much (``ratio``), by which criterion and what to leave
alone; ``prune.finetune`` overrides the recipe's training settings for the recovery run (fewer
epochs, a lower learning rate). The artifact is a pruned checkpoint the export stage reads like
any other, and a manifest with the test figure before pruning, right after it and after
fine-tuning, beside the MACs and parameters kept; validation gates the loss at ``max_drop``.

Pruning has to pay: the pruned and the unpruned model are timed side by side on the target's backend at
batch 1 (for a TensorRT device not at hand, the data-sheet estimate from their MACs), and the pruned one
goes on only when it is ``min_speedup`` times faster within ``max_drop``. When the build ships INT8, the
speed-up that counts is INT8's (each model quantized as the build would for that backend, from a few
training images): it can differ a lot from FP32's — 15 % of sdc-squeezenet-mrf's channels made it 1.40x
faster in FP32 on a Xeon with AMX and 1.03x in INT8, whose kernels pad narrow layers to their tiles.
Otherwise the build carries on with the unpruned model; the before/after table is recorded either way.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgekit.backends import get_backend, is_available
from edgekit.backends.tensorrt.preflight import estimate
from edgekit.checkpoint import load_model
from edgekit.data.recipe_data import DataSource, as_source, load_split
from edgekit.errors import EdgekitError
from edgekit.int8 import openvino_nncf, qdq, ranges
from edgekit.pruning import PruneSpec, count_macs, prune_channels
from edgekit.recipes import Recipe
from edgekit.stages.export import to_onnx
from edgekit.stages.train import CHECKPOINT, finetune_settings, fit, pick_device
from edgekit.targets import Target
from edgekit.tasks import get_task
from edgekit.timing import interleaved_p50

STAGE = "prune"
CALIBRATION_IMAGES = 8         # training images the INT8 timing copies are quantized from
DEFAULT_MAX_DROP = 1.0
DEFAULT_MIN_SPEEDUP = 1.1      # the pruned model must run at least 10 % faster to replace the unpruned one


def prune_spec(recipe: Recipe) -> PruneSpec | None:
    """The recipe's pruning, or None when it prunes nothing."""
    spec = PruneSpec.from_recipe(recipe.prune, str(recipe.path)) if recipe.prune else None
    return spec if spec and spec.ratio > 0 else None


def speed_backend(target: Target | None) -> str:
    """Where pruning's speed is measured: the target's CPU backend here, ``estimate`` for a TensorRT device."""
    if target is None:
        return "onnxruntime"
    if target.backend == "tensorrt":
        return "estimate"
    return target.backend if is_available(target.backend) else (target.fallback or "onnxruntime")


def speed_precision(recipe: Recipe, backend: str) -> str:
    """The precision pruning's speed-up is judged in: INT8 when the build ships it and the backend is measured
    here; FP32 otherwise (the data-sheet estimate already takes each model's fastest precision)."""
    return "int8" if backend != "estimate" and "int8" in recipe.quantize.get("precisions", []) else "fp32"


def prune_settings(recipe: Recipe, seed: int = 0, epochs: int | None = None, device: str = "auto",
                   target: Target | None = None) -> dict:
    """Fine-tuning settings (the recipe's training, then ``prune.finetune``) plus the pruning itself."""
    spec = prune_spec(recipe)
    if spec is None:
        raise EdgekitError(f"{recipe.path}: the recipe prunes nothing (no prune.ratio > 0)")
    settings = finetune_settings(recipe, recipe.prune, seed, epochs, device)
    backend = speed_backend(target)
    settings["prune"] = {**spec.__dict__, "ignore": list(spec.ignore),
                         "max_drop": float(recipe.prune.get("max_drop", DEFAULT_MAX_DROP)),
                         "min_speedup": float(recipe.prune.get("min_speedup", DEFAULT_MIN_SPEEDUP)),
                         "speed_on": backend + (f" ({target.name})" if target else ""),
                         "speed_in": speed_precision(recipe, backend)}
    return settings


def prune(
    recipe: Recipe,
    checkpoint: Path,
    data: DataSource | Path,
    out: Path,
    seed: int = 0,
    epochs: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    target: Target | None = None,
) -> dict:
    """Prune ``checkpoint`` (file, or a train artifact folder), fine-tune it into ``out`` and decide whether
    it pays (``results.decision``; ``chosen_checkpoint`` reads it)."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / CHECKPOINT
    if threads:
        torch.set_num_threads(threads)
    spec = prune_spec(recipe)
    settings = prune_settings(recipe, seed, epochs, device, target)
    model = load_model(recipe, checkpoint)
    unpruned = copy.deepcopy(model)
    task = get_task(recipe).training(recipe, load_split(recipe, data), seed)
    dev = pick_device(device)
    key = task.headline
    before = task.evaluate(model.to(dev), dev)[key]
    stats = prune_channels(model.cpu(), torch.zeros(1, *recipe.preprocess.input_shape), spec)
    untuned = task.evaluate(model.to(dev), dev)[key]
    print(f"pruned {spec.ratio:.0%} of the channels ({spec.importance}): MACs kept {stats['macs_kept']:.1%}, "
          f"params kept {stats['params_kept']:.1%}; {task.label} {before:.2f} -> {untuned:.2f} before fine-tuning")
    record = {**stats, "metric": task.label, "before": before, "after_pruning": untuned}
    images = next(iter(task.batches(0, CALIBRATION_IMAGES)))[0].numpy()     # to quantize the timing copies

    def decide(tuned: torch.nn.Module, after: float) -> dict:
        return {"decision": decision(recipe, unpruned, tuned.cpu().eval(), before, after, stats, settings["prune"],
                                     target, threads or 1, images)}

    torch.manual_seed(seed)      # dropout's draws: the same fine-tuning on every run
    manifest = fit(recipe, model, data, out, settings, STAGE, {"checkpoint": checkpoint, **as_source(data).inputs()},
                   seed, threads, device, results_extra={"pruning": record},
                   checkpoint_extra={"pruning": settings["prune"]}, results_after=decide)
    after = manifest["results"]["headline"]["value"]
    print(f"fine-tuned {settings['epochs']} epochs: {task.label} {after:.2f} (unpruned {before:.2f}); "
          + manifest["results"]["decision"]["reason"])
    return manifest


def int8_copy(onnx_path: Path, backend: str, images: np.ndarray) -> Path:
    """``onnx_path`` in INT8 as the build would ship it on ``backend`` (OpenVINO: NNCF's model; ONNX Runtime:
    the U8 Q/DQ model), min-max ranges from ``images``: for timing, not for its figures."""
    batches = [image[None] for image in images]
    if backend == "openvino":
        out = onnx_path.with_suffix(".int8.xml")
        openvino_nncf.quantize(onnx_path, batches, out, "minmax")
        return out
    cache, out = onnx_path.with_suffix(".ranges.json"), onnx_path.with_suffix(".int8.onnx")
    ranges.calibrate(onnx_path, batches, "minmax", cache)
    qdq.write(onnx_path, out, cache, "minmax", "u8")
    return out


def latency_ms(recipe: Recipe, models: dict[str, torch.nn.Module], backend: str, target: Target | None,
               threads: int, precision: str = "fp32", images: np.ndarray | None = None) -> dict[str, float]:
    """Batch-1 latency (best p50 of 3 interleaved rounds, ms) of each model on ``backend`` in ``precision``
    (``int8``: quantized from ``images``); for ``estimate``, the target's data-sheet figure from each model's
    MACs at its fastest precision."""
    example = torch.zeros(1, *recipe.preprocess.input_shape)
    if backend == "estimate":
        out = {}
        for name, model in models.items():
            fps = estimate(count_macs(model, example)[0], target)
            best = max(v["estimate_fps"] for v in fps.values())
            out[name] = round(1000.0 / best, 3)
        return out
    module = get_backend(backend)
    runners = {}
    with tempfile.TemporaryDirectory(prefix="edgekit-prune-speed.") as tmp:
        for name, model in models.items():
            onnx_path = Path(tmp) / f"{name}.onnx"
            to_onnx(model, tuple(example.shape), onnx_path, recipe)
            if precision == "int8":
                runners[name] = module.load(int8_copy(onnx_path, backend, images), threads)
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            runners[name] = module.load(module.compile(onnx_path, folder, "fp32"), threads)
        return interleaved_p50({name: runner.infer for name, runner in runners.items()}, example.numpy(), rounds=3)


def decision(recipe: Recipe, unpruned: torch.nn.Module, pruned: torch.nn.Module, before: float, after: float,
             stats: dict, spec: dict, target: Target | None, threads: int, images: np.ndarray | None = None) -> dict:
    """Whether the pruned model replaces the unpruned one, with the table that decided it."""
    backend, precision = speed_backend(target), spec.get("speed_in", "fp32")
    models = {"unpruned": unpruned.eval(), "pruned": pruned}
    ms = {p: latency_ms(recipe, models, backend, target, threads, p, images) for p in dict.fromkeys(["fp32", precision])}
    speedups = {p: t["unpruned"] / t["pruned"] for p, t in ms.items()}
    speedup = speedups[precision]
    drop = before - after
    fast, accurate = speedup >= spec["min_speedup"], drop <= spec["max_drop"]
    kept = fast and accurate
    also = f"; FP32 {speedups['fp32']:.2f}x" if precision != "fp32" else ""
    why = (f"{speedup:.2f}x the unpruned model's speed ({'estimated' if backend == 'estimate' else 'measured'} on "
           f"{spec['speed_on']}, {precision.upper()} batch 1{also}; needs {spec['min_speedup']:g}x), {drop:+.2f} "
           f"points lost (allowed {spec['max_drop']:g})")
    reason = ("pruned model kept: " if kept else "pruning DECLINED, the unpruned model goes on: ") + why
    table = []
    for label, name, when, figure in (("unpruned", "unpruned", "before", before),
                                      ("pruned + fine-tuned", "pruned", "after", after)):
        row = {"model": label, "params": stats[f"params_{when}"], "macs": stats[f"macs_{when}"],
               "latency_ms": ms["fp32"][name]}
        if precision != "fp32":
            row[f"latency_{precision}_ms"] = ms[precision][name]
        table.append({**row, "metric": figure})
    return {"kept": kept, "reason": reason, "speedup": round(speedup, 3), "precision": precision, "drop": drop,
            "speed_on": backend, "table": table}


def summary(manifest: dict) -> str:
    """One line for the build table: what pruning kept, what it cost, and whether it paid."""
    r = manifest["results"]
    p = r["pruning"]
    return (f"MACs kept {p['macs_kept']:.0%}; {p['metric']} {p['before']:.2f} -> {r['headline']['value']:.2f} "
            f"after {r['epochs']} fine-tuning epochs; {r['decision']['reason']}")
