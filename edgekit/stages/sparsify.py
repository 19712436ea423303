"""2:4 sparsity + fine-tune, for targets with Sparse Tensor Cores (compute capability 8.0 and newer).

Reads the checkpoint the build goes on with (pruned or not), marks which layers qualify (``edgekit.sparsity``),
puts the 2:4 masks on them, fine-tunes with the masks enforced (``sparsity.finetune`` overrides the
recipe's training, like pruning's) and folds the masks into the weights. The sparse model goes on only
when it loses at most ``sparsity.max_drop`` against its input; otherwise the build exports the dense one.
Its speed is TensorRT's to show, on the device (the kit builds with the sparse-weights flag); here the
model's accuracy is validated on the host's backends like every artifact of a TensorRT target.
"""
from __future__ import annotations

from pathlib import Path

import torch

from edgekit.checkpoint import load_model
from edgekit.torchfile import load_tensors
from edgekit.data.recipe_data import DataSource, as_source, load_split
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.sparsity import SparsitySpec, apply_masks, fold, layer_table, sparse_share
from edgekit.stages.train import finetune_settings, fit, pick_device
from edgekit.targets import Target
from edgekit.tasks import get_task

STAGE = "sparsify"


def sparsity_spec(recipe: Recipe) -> SparsitySpec | None:
    """The recipe's 2:4 sparsity, or None when it has no ``sparsity`` section."""
    return SparsitySpec.from_recipe(recipe.sparsity, str(recipe.path)) if recipe.sparsity else None


def applies(recipe: Recipe, target: Target) -> bool:
    """Whether a build for ``target`` sparsifies: the recipe asks and the target's GPU has Sparse Tensor Cores."""
    return sparsity_spec(recipe) is not None and target.sparse_tensor_cores


def missing() -> dict | None:
    """What the build skips when NVIDIA Model Optimizer (the 2:4 masks, an optional extra) is not installed: the
    stage, why and how to get it; None when it is there."""
    try:
        import modelopt.torch.sparsity  # noqa: F401
    except ImportError as exc:
        return {"stage": STAGE, "why": f"NVIDIA Model Optimizer is not installed ({exc})",
                "how": "pip install 'edgekit[sparsity]'", "effect": "the dense model is built"}
    return None


def sparsity_settings(recipe: Recipe, seed: int = 0, epochs: int | None = None, device: str = "auto") -> dict:
    """Fine-tuning settings (the recipe's training, then ``sparsity.finetune``) plus the sparsity itself."""
    spec = sparsity_spec(recipe)
    if spec is None:
        raise EdgekitError(f"{recipe.path}: the recipe has no sparsity section")
    settings = finetune_settings(recipe, recipe.sparsity, seed, epochs, device)
    settings["sparsity"] = {**spec.__dict__, "ignore": list(spec.ignore)}
    return settings


def sparsify(recipe: Recipe, checkpoint: Path, data: DataSource | Path, out: Path, seed: int = 0,
             epochs: int | None = None, threads: int | None = None, device: str = "auto") -> dict:
    """Mask ``checkpoint`` 2:4, fine-tune it into ``out`` and decide whether it goes on (``results.decision``)."""
    if threads:
        torch.set_num_threads(threads)
    spec = sparsity_spec(recipe)
    settings = sparsity_settings(recipe, seed, epochs, device)
    model = load_model(recipe, checkpoint)
    stored = load_tensors(checkpoint)
    carried = {"pruning": stored["pruning"]} if stored.get("pruning") else {}   # a pruned model stays loadable
    rows = layer_table(model, spec, torch.zeros(1, *recipe.preprocess.input_shape))
    task = get_task(recipe).training(recipe, load_split(recipe, data), seed)
    dev = pick_device(device)
    before = task.evaluate(model.to(dev), dev)[task.headline]
    apply_masks(model.cpu(), rows)
    masked = task.evaluate(model.to(dev), dev)[task.headline]
    share = sparse_share(rows)
    print(f"2:4 masks on {sum(r['sparse'] for r in rows)} of {len(rows)} layers ({share:.0%} of the MACs); "
          f"{task.label} {before:.2f} -> {masked:.2f} before fine-tuning")
    record = {"metric": task.label, "before": before, "after_masking": masked, "macs_share": share, "layers": rows}

    def decide(tuned: torch.nn.Module, after: float) -> dict:
        drop = before - after
        kept = drop <= spec.max_drop
        why = f"{drop:+.2f} points lost after fine-tuning (allowed {spec.max_drop:g})"
        return {"decision": {"kept": kept, "drop": drop,
                             "reason": ("2:4 model kept: " if kept else "2:4 sparsity DECLINED, the dense model "
                                        "goes on: ") + why}}

    torch.manual_seed(seed)      # dropout's draws: the same fine-tuning on every run
    manifest = fit(recipe, model, data, out, settings, STAGE, {"checkpoint": checkpoint, **as_source(data).inputs()},
                   seed, threads, device, results_extra={"sparsity": record}, checkpoint_extra=carried, results_after=decide,
                   finish=fold)
    print(f"fine-tuned {settings['epochs']} epochs: {task.label} {manifest['results']['headline']['value']:.2f} "
          f"(dense {before:.2f}); " + manifest["results"]["decision"]["reason"])
    return manifest


def summary(manifest: dict) -> str:
    """One line for the build table."""
    r = manifest["results"]
    s = r["sparsity"]
    n = sum(row["sparse"] for row in s["layers"])
    return (f"2:4 on {n}/{len(s['layers'])} layers ({s['macs_share']:.0%} of MACs); {s['metric']} {s['before']:.2f} -> "
            f"{r['headline']['value']:.2f} after {r['epochs']} fine-tuning epochs; {r['decision']['reason']}")
