"""Train (or fine-tune) a recipe's model; checkpoints every epoch so a killed run resumes."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.artifacts import staged_dir, write_json, write_manifest
from edgekit.checkpoint import build_model, save_checkpoint
from edgekit.data.recipe_data import load_split, read_images
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.recipes import Recipe

STAGE = "train"
CHECKPOINT = "model.pt"


def param_groups(model: torch.nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict]:
    """Adam parameter groups: ``lr x multiplier`` for modules named by paper name or module prefix."""
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


def manifest_settings(recipe: Recipe, pretrained: Path | None, epochs: int | None, seed: int) -> dict:
    """What the train artifact records as its settings (``build`` compares it to resume)."""
    settings = recipe.train_settings(pretrained is not None)
    if epochs is not None:
        settings["epochs"] = epochs
    return {"recipe": recipe.name, "seed": seed, **settings}


def train_inputs(data_root: Path, pretrained: Path | None) -> dict:
    return {"data": data_root, **({"pretrained": pretrained} if pretrained else {})}


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 32) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            correct += int((model(torch.from_numpy(x[i : i + batch])).argmax(1).numpy() == y[i : i + batch]).sum())
    return 100.0 * correct / max(1, len(x))


def train(
    recipe: Recipe,
    data_root: Path,
    out: Path,
    pretrained: Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Train into the artifact folder ``out``; resumes from ``<out>.ckpt/last.pt`` if present."""
    if threads:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # tiny activations late in training otherwise slow CPU math several-fold
    settings = manifest_settings(recipe, pretrained, epochs, seed)
    data = load_split(recipe, data_root)
    pre = recipe.preprocess
    x_train = pre.batch(read_images(data.train, "reading train images"))
    y_train = np.array([s.label for s in data.train])
    x_test = pre.batch(read_images(data.test, "reading test images"))
    y_test = np.array([s.label for s in data.test])

    torch.manual_seed(seed)
    model = build_model(recipe)
    loaded = model.load_imagenet_trunk(pretrained) if pretrained is not None else 0
    groups = param_groups(model, settings["lr"], settings.get("lr_multipliers", {}))
    if settings.get("optimizer", "adam") == "adam":
        opt = torch.optim.Adam(groups, lr=settings["lr"], weight_decay=settings.get("weight_decay", 0.0))
    else:
        opt = torch.optim.SGD(groups, lr=settings["lr"], momentum=settings.get("momentum", 0.9),
                              weight_decay=settings.get("weight_decay", 0.0))
    sched = torch.optim.lr_scheduler.StepLR(opt, settings.get("step_epochs", 10**6), settings.get("gamma", 0.1))

    resume_dir = Path(f"{out}.ckpt")
    resume_dir.mkdir(parents=True, exist_ok=True)
    last = resume_dir / "last.pt"
    history: list[dict] = []
    start = 0
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state.get("settings") == settings and state.get("recipe") == recipe.name:
            model.load_state_dict(state["state_dict"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            history, start = state["history"], state["epoch"]

    bs, iter_size, clip = settings["batch_size"], settings.get("iter_size", 1), settings.get("grad_clip")
    rng = np.random.default_rng(seed)
    for _ in range(start):  # replay the shuffles of finished epochs so a resumed run matches
        rng.permutation(len(x_train))
    t0 = time.perf_counter()
    for epoch in range(start, settings["epochs"]):
        model.train()
        order = rng.permutation(len(x_train))
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        losses = []
        progress = bar(batches, f"epoch {epoch + 1}/{settings['epochs']}")
        opt.zero_grad()
        for step, idx in enumerate(progress, 1):
            logits = model(torch.from_numpy(x_train[idx]))
            loss = F.cross_entropy(logits, torch.from_numpy(y_train[idx]))
            (loss / iter_size).backward()
            if step % iter_size == 0 or step == len(batches):
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                opt.zero_grad()
            losses.append(loss.item())
            progress.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        sched.step()
        acc = evaluate(model, x_test, y_test)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "test_accuracy": acc,
                        "lr": opt.param_groups[0]["lr"] / opt.param_groups[0]["lr_mult"]})
        progress.write(f"epoch {epoch + 1}/{settings['epochs']}: loss {history[-1]['loss']:.4f}, "
                       f"test accuracy {acc:.2f} %")
        save_checkpoint(last, model, recipe, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                        epoch=epoch + 1, history=history, settings=settings)
    seconds = time.perf_counter() - t0

    results = {
        "test_accuracy": history[-1]["test_accuracy"] if history else evaluate(model, x_test, y_test),
        "epochs": settings["epochs"],
        "train_seconds_this_run": round(seconds, 1),
        "pretrained_tensors_loaded": loaded,
        "data": data.describe(),
        "torch_threads": torch.get_num_threads(),
    }
    with staged_dir(out) as tmp:
        save_checkpoint(tmp / CHECKPOINT, model, recipe)
        write_json(tmp / "history.json", history)
        write_manifest(tmp, STAGE, train_inputs(data_root, pretrained), settings, results)
    last.unlink()
    resume_dir.rmdir()
    return json.loads((out / "manifest.json").read_text())
