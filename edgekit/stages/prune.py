"""Prune + fine-tune: remove channels from a trained model, train it back, record what it cost.

The recipe's ``prune`` section says how much (``ratio``), by which criterion and what to leave
alone; ``prune.finetune`` overrides the recipe's training settings for the recovery run (fewer
epochs, a lower learning rate). The artifact is a pruned checkpoint the export stage reads like
any other, and a manifest with the test figure before pruning, right after it and after
fine-tuning, beside the MACs and parameters kept; validation gates the loss at ``max_drop``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from edgekit.checkpoint import load_model
from edgekit.data.recipe_data import DataSource, as_source, load_split
from edgekit.errors import EdgekitError
from edgekit.pruning import PruneSpec, prune_channels
from edgekit.recipes import Recipe
from edgekit.stages.train import CHECKPOINT, fit, manifest_settings, pick_device
from edgekit.tasks import get_task

STAGE = "prune"
DEFAULT_MAX_DROP = 1.0


def prune_spec(recipe: Recipe) -> PruneSpec | None:
    """The recipe's pruning, or None when it prunes nothing."""
    spec = PruneSpec.from_recipe(recipe.prune, str(recipe.path)) if recipe.prune else None
    return spec if spec and spec.ratio > 0 else None


def prune_settings(recipe: Recipe, seed: int = 0, epochs: int | None = None, device: str = "auto") -> dict:
    """Fine-tuning settings (the recipe's training, then ``prune.finetune``) plus the pruning itself."""
    spec = prune_spec(recipe)
    if spec is None:
        raise EdgekitError(f"{recipe.path}: the recipe prunes nothing (no prune.ratio > 0)")
    settings = manifest_settings(recipe, None, None, seed, device, from_weights=True)
    settings.update(recipe.prune.get("finetune", {}))
    if epochs is not None:
        settings["epochs"] = epochs
    settings["prune"] = {**spec.__dict__, "ignore": list(spec.ignore),
                         "max_drop": float(recipe.prune.get("max_drop", DEFAULT_MAX_DROP))}
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
) -> dict:
    """Prune ``checkpoint`` (file, or a train artifact folder) and fine-tune it into ``out``."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / CHECKPOINT
    if threads:
        torch.set_num_threads(threads)
    spec = prune_spec(recipe)
    settings = prune_settings(recipe, seed, epochs, device)
    model = load_model(recipe, checkpoint)
    task = get_task(recipe).training(recipe, load_split(recipe, data), seed)
    dev = pick_device(device)
    key = task.headline
    before = task.evaluate(model.to(dev), dev)[key]
    stats = prune_channels(model.cpu(), torch.zeros(1, *recipe.preprocess.input_shape), spec)
    untuned = task.evaluate(model.to(dev), dev)[key]
    print(f"pruned {spec.ratio:.0%} of the channels ({spec.importance}): MACs kept {stats['macs_kept']:.1%}, "
          f"params kept {stats['params_kept']:.1%}; {task.label} {before:.2f} -> {untuned:.2f} before fine-tuning")
    record = {**stats, "metric": task.label, "before": before, "after_pruning": untuned}
    manifest = fit(recipe, model, data, out, settings, STAGE, {"checkpoint": checkpoint, **as_source(data).inputs()},
                   seed, threads, device, results_extra={"pruning": record},
                   checkpoint_extra={"pruning": settings["prune"]})
    after = manifest["results"]["headline"]["value"]
    print(f"fine-tuned {settings['epochs']} epochs: {task.label} {after:.2f} (unpruned {before:.2f})")
    return manifest


def summary(manifest: dict) -> str:
    """One line for the build table: what pruning kept and what it cost."""
    r = manifest["results"]
    p = r["pruning"]
    return (f"MACs kept {p['macs_kept']:.0%}; {p['metric']} {p['before']:.2f} -> {r['headline']['value']:.2f} "
            f"after {r['epochs']} fine-tuning epochs")
