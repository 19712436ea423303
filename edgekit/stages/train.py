"""Train (or fine-tune) a recipe's model; checkpoints every epoch so a killed run resumes.

The loop is the same for every task (``edgekit.training`` supplies batches, loss and the test
figure). On a CUDA machine the recipe's ``train.gpu`` overrides apply (a larger batch, mixed
precision); on a CPU the run uses all cores, or ``threads``. Under ``torchrun`` the processes train one model
together (:mod:`edgekit.distributed`); process 0 evaluates, checkpoints and writes the artifact, and the others
return None.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgekit import distributed
from edgekit.artifacts import read_manifest, staged_dir, write_json, write_manifest
from edgekit.checkpoint import build_model, save_checkpoint
from edgekit.data.recipe_data import DataSource, as_source, load_split
from edgekit.errors import EdgekitError
from edgekit.estimate import human
from edgekit.progress import bar
from edgekit.recipes import Recipe
from edgekit.tasks import get_task
from edgekit.targets import BF16, host_cpu

STAGE = "train"
CHECKPOINT = "model.pt"
SCHEDULES = ("step", "exponential", "cosine")
OPTIMIZERS = ("adam", "adamw", "sgd")


def param_groups(model: torch.nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict]:
    """Parameter groups: ``lr x multiplier`` for modules named by paper name or module prefix."""
    names = getattr(model, "PAPER_LAYER_NAMES", {})
    prefixes = {names.get(k, k): float(v) for k, v in multipliers.items()}
    groups: dict[float, list] = {}
    matched = set()
    for pname, p in model.named_parameters():
        mult = 1.0
        for prefix, m in prefixes.items():
            if pname.startswith(prefix + "."):
                mult = m
                matched.add(prefix)
        groups.setdefault(mult, []).append(p)
    unmatched = set(prefixes) - matched
    if unmatched:
        raise EdgekitError(f"train.lr_multipliers names no layer of the model: {', '.join(sorted(unmatched))}")
    return [{"params": ps, "lr": lr * m, "lr_mult": m} for m, ps in sorted(groups.items())]


def pick_device(device: str = "auto") -> torch.device:
    """The training device; under torchrun on GPUs, this process's own GPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.world().local_rank)
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EdgekitError(f"device {device!r} requested but torch sees no CUDA GPU")
    return torch.device(device)


def manifest_settings(recipe: Recipe, pretrained: Path | None, epochs: int | None, seed: int,
                      device: str = "auto", from_weights: bool = False) -> dict:
    """What the train artifact records as its settings (``build`` compares it to resume); the
    recipe's ``from_scratch`` overrides apply unless the network starts from ``pretrained`` weights
    (or, ``from_weights``, from a trained checkpoint)."""
    settings = recipe.train_settings(pretrained is not None or from_weights)
    gpu = settings.pop("gpu", {})
    if pick_device(device).type == "cuda":
        settings.update(gpu)
    if epochs is not None:
        settings["epochs"] = epochs
    schedule = settings.get("schedule", "step")
    if schedule not in SCHEDULES:
        raise EdgekitError(f"{recipe.path}: train.schedule {schedule!r} is not one of {', '.join(SCHEDULES)}")
    if settings.get("optimizer", "adam") not in OPTIMIZERS:
        raise EdgekitError(f"{recipe.path}: train.optimizer {settings['optimizer']!r} is not one of "
                           f"{', '.join(OPTIMIZERS)}")
    return {"recipe": recipe.name, "seed": seed, **settings, **({"decision": recipe.decision} if recipe.decision else {})}


def finetune_settings(recipe: Recipe, section: dict, seed: int, epochs: int | None = None,
                      device: str = "auto") -> dict:
    """A compress stage's recovery run (prune, sparsify): the recipe's training from a trained model, then the
    section's ``finetune`` overrides, then ``epochs``."""
    settings = manifest_settings(recipe, None, None, seed, device, from_weights=True)
    settings.update(section.get("finetune", {}))
    if epochs is not None:
        settings["epochs"] = epochs
    return settings


def autocast_bf16(settings: dict, dev: torch.device) -> bool:
    """Whether training runs under bf16 autocast: ``amp`` asked for, on a GPU or on a CPU that computes in
    bf16 (AVX512-BF16, AMX, unless oneDNN is held below them by ONEDNN_MAX_CPU_ISA); elsewhere emulated bf16
    would be slower than FP32, so ``amp`` is ignored."""
    if not settings.get("amp"):
        return False
    if dev.type == "cuda":
        return True
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    native = capped in ("ALL", "DEFAULT") or any(isa in capped for isa in ("BF16", "FP16", "AMX", "AVX10"))
    return native and bool(BF16 & set(host_cpu()[1]))


def lr_factor(settings: dict, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier at iteration ``step``: linear warm-up, then step, exponential or cosine
    decay (cosine runs per iteration from 1 down to ``min_lr_factor`` at the last epoch's end)."""
    epoch = step // max(1, steps_per_epoch)
    warmup = settings.get("warmup_epochs", 0) * steps_per_epoch
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    gamma = settings.get("gamma", 0.1)
    schedule = settings.get("schedule", "step")
    if schedule == "exponential":
        return warm * gamma**epoch
    if schedule == "cosine":
        floor = settings.get("min_lr_factor", 0.0)
        t = min(1.0, step / max(1, settings["epochs"] * steps_per_epoch))
        return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
    return warm * gamma ** (epoch // settings.get("step_epochs", 10**6))


def train_inputs(data: DataSource | Path, pretrained: Path | None) -> dict:
    return {**as_source(data).inputs(), **({"pretrained": pretrained} if pretrained else {})}


def make_optimizer(model: torch.nn.Module, settings: dict) -> torch.optim.Optimizer:
    groups = param_groups(model, settings["lr"], settings.get("lr_multipliers", {}))
    wd = settings.get("weight_decay", 0.0)
    name = settings.get("optimizer", "adam")
    if name == "adam":
        return torch.optim.Adam(groups, lr=settings["lr"], weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=settings["lr"], weight_decay=wd)
    return torch.optim.SGD(groups, lr=settings["lr"], momentum=settings.get("momentum", 0.9), weight_decay=wd)


def train(
    recipe: Recipe,
    data: DataSource | Path,
    out: Path,
    pretrained: Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
) -> dict:
    """Train into the artifact folder ``out``; resumes from ``<out>.ckpt/last.pt`` if present."""
    settings = manifest_settings(recipe, pretrained, epochs, seed, device)
    torch.manual_seed(seed)
    model = build_model(recipe)
    loaded = model.load_imagenet_trunk(pretrained) if pretrained is not None else 0
    return fit(recipe, model, data, out, settings, STAGE, train_inputs(data, pretrained), seed, threads,
               device, {"pretrained_tensors_loaded": loaded})


def fit(
    recipe: Recipe,
    model: torch.nn.Module,
    data_source: DataSource | Path,
    out: Path,
    settings: dict,
    stage: str,
    inputs: dict,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
    results_extra: dict | None = None,
    checkpoint_extra: dict | None = None,
    results_after: Callable[[torch.nn.Module, float], dict] | None = None,
    finish: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> dict | None:
    """Train ``model`` by ``settings`` into the artifact folder ``out`` of ``stage`` (train, or prune's
    fine-tuning); resumes from ``<out>.ckpt/last.pt`` when that holds the same settings. ``finish`` turns the
    trained model into the one saved (2:4 masks folded into the weights); ``results_after`` adds to the
    results from that model and its headline figure, before the artifact is written. Under torchrun every
    process calls this; process 0 returns the artifact's manifest, the others None."""
    if threads:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # tiny activations late in training otherwise slow CPU math several-fold
    dev = pick_device(device)
    world = distributed.start(dev.type)
    data = load_split(recipe, data_source)
    task = get_task(recipe).training(recipe, data, seed)
    extra = checkpoint_extra or {}

    memory_format = torch.channels_last if settings.get("channels_last") else torch.contiguous_format
    model = model.to(dev, memory_format=memory_format)
    layout = distributed.Layout.of(settings, world, dev.type, model)
    opt = make_optimizer(model, {**settings, "lr": settings["lr"] * layout.lr_factor})
    bs, iter_size, clip = layout.batch, settings.get("iter_size", 1), settings.get("grad_clip")
    workers = settings.get("workers", 0) if dev.type == "cuda" else 0
    if hasattr(task, "prepare"):            # what the task needs to know of the run (the epochs trained) or set
        task.prepare(model, settings)
    steps_per_epoch = math.ceil(getattr(task, "epoch_size", len(data.train)) / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(settings, step, steps_per_epoch))
    amp = autocast_bf16(settings, dev)

    resume_dir = Path(f"{out}.ckpt")
    resume_dir.mkdir(parents=True, exist_ok=True)
    last = resume_dir / "last.pt"
    history: list[dict] = []
    start = 0
    if last.is_file():
        state = torch.load(last, map_location=dev, weights_only=False)
        if state.get("settings") == settings and state.get("recipe") == recipe.name:
            model.load_state_dict(state["state_dict"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            history, start = state["history"], state["epoch"]
            if world.main:
                print(f"{stage}: resumed from {last} after epoch {start}", file=sys.stderr, flush=True)
    trained = distributed.wrap(model, layout, dev)      # the processes' model (``model`` itself for one)

    t0 = time.perf_counter()
    for epoch in range(start, settings["epochs"]):
        trained.train()
        t_epoch = time.perf_counter()
        losses: list[float] = []
        parts_sum: dict[str, float] = {}
        progress = bar(task.batches(epoch, bs, workers, world), f"epoch {epoch + 1}/{settings['epochs']}",
                       total=steps_per_epoch, enabled=world.main)
        opt.zero_grad()
        for step, batch in enumerate(progress, 1):
            batch = tuple(t.to(dev, non_blocking=True) for t in batch)
            x = batch[0].contiguous(memory_format=memory_format)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss, parts = task.loss(trained(x), batch)
            if not torch.isfinite(loss):
                raise EdgekitError(f"{recipe.path}: training diverged at epoch {epoch + 1} (loss {loss.item()}); "
                                   "lower train.lr")
            (loss / iter_size).backward()
            if step % iter_size == 0:
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                opt.zero_grad()
            sched.step()
            losses.append(loss.item())
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v
            progress.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if len(losses) % iter_size:  # a last, partial accumulation
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            opt.zero_grad()
        stepping = time.perf_counter() - t_epoch
        scored = (epoch + 1) % int(settings.get("eval_every", 1)) == 0 or epoch + 1 == settings["epochs"]
        figures = task.evaluate(model, dev) if scored and world.main else None
        history.append({"epoch": epoch + 1, "loss": distributed.mean(float(np.mean(losses))),
                        **{k: distributed.mean(v / len(losses)) for k, v in sorted(parts_sum.items())},
                        "test": figures, "steps": step,
                        "lr": opt.param_groups[0]["lr"] / opt.param_groups[0]["lr_mult"],
                        "step_seconds": round(stepping, 3), "seconds": round(time.perf_counter() - t_epoch, 1)})
        if world.main:
            pace = np.mean([h["seconds"] for h in history[start:]])
            left = (settings["epochs"] - epoch - 1) * pace
            progress.write(f"epoch {epoch + 1}/{settings['epochs']}: loss {history[-1]['loss']:.4f}"
                           + (f", {task.label} {figures[task.headline]:.2f}" if figures else "")
                           + f" ({pace:.0f} s/epoch"
                           + (f", {human(left).lstrip('~')} left)" if left else ")"))
            save_checkpoint(last, model, recipe, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            epoch=epoch + 1, history=history, settings=settings, **extra)
        distributed.barrier()           # the checkpoint is whole before any process goes on
    seconds = time.perf_counter() - t0
    if not world.main:
        distributed.barrier()          # until process 0 has written the artifact
        return None

    final = history[-1]["test"] if history else task.evaluate(model, dev)
    results = {
        "headline": {"metric": task.label, "key": task.headline, "value": final[task.headline]},
        "test": final,
        "epochs": settings["epochs"],
        "train_seconds_this_run": round(seconds, 1),
        "train_seconds_total": round(sum(h["seconds"] for h in history), 1),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "autocast": "bf16" if amp else None,
        "data": data.describe(),
        "torch_threads": torch.get_num_threads(),
        "distributed": layout.describe() if layout.size > 1 else None,
        **(task.describe() if hasattr(task, "describe") else {}),
        **(results_extra or {}),
    }
    if finish is not None:
        model = finish(model)
    if results_after is not None:
        results.update(results_after(model, final[task.headline]))
    with staged_dir(out) as tmp:
        save_checkpoint(tmp / CHECKPOINT, model.to("cpu", memory_format=torch.contiguous_format), recipe, **extra)
        write_json(tmp / "history.json", history)
        write_manifest(tmp, stage, inputs, settings, results)
    last.unlink(missing_ok=True)
    resume_dir.rmdir()
    distributed.barrier()
    return json.loads((out / "manifest.json").read_text())


def chosen_checkpoint(stage_dir: Path, before: Path) -> Path:
    """The checkpoint a build goes on with after a stage that fine-tunes a compressed model (prune,
    sparsify): the stage's own only when its ``results.decision`` kept it, else the one it started from."""
    decided = read_manifest(stage_dir)["results"].get("decision", {"kept": True})
    return Path(stage_dir) / CHECKPOINT if decided["kept"] else Path(before)
