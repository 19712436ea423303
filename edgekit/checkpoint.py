"""Model checkpoints: the recipe's model built and filled from an edgekit or plain state dict."""
from __future__ import annotations

from pathlib import Path

import torch

from edgekit.errors import EdgekitError
from edgekit.torchfile import load_tensors
from edgekit.models import create_model
from edgekit.pruning import fit_to_state_dict
from edgekit.recipes import Recipe


def build_model(recipe: Recipe) -> torch.nn.Module:
    return create_model(recipe.model["name"], **recipe.model.get("args", {}))


BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "weights"


def resolve_pretrained(recipe: Recipe, choice: str | Path | None) -> Path | None:
    """The ImageNet weights to start from: ``choice`` (a path, or "none" for from scratch), else the
    recipe's ``model.pretrained`` (a file bundled in edgekit/weights/)."""
    if choice is not None:
        if str(choice).lower() == "none":
            return None
        if not Path(choice).is_file():
            raise EdgekitError(f"{choice}: pretrained weights file not found")
        return Path(choice)
    bundled = recipe.model.get("pretrained")
    return BUNDLED_WEIGHTS / bundled if bundled else None


def save_checkpoint(path: Path, model: torch.nn.Module, recipe: Recipe, **extra) -> None:
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    torch.save({"recipe": recipe.name, "model": recipe.model, "state_dict": model.state_dict(), **extra}, tmp)
    tmp.replace(path)


def load_model(recipe: Recipe, path: Path) -> torch.nn.Module:
    """Build the recipe's model and load ``path`` (edgekit checkpoint, pruned or not, or a plain state dict)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: checkpoint not found")
    ckpt = load_tensors(path)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise EdgekitError(f"{path}: expected a state dict")
    model = build_model(recipe)
    if isinstance(ckpt, dict) and ckpt.get("pruning"):  # a pruned model: narrow the layers to its widths first
        fit_to_state_dict(model, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise EdgekitError(f"{path}: does not fit model {recipe.model['name']} ({first})") from exc
    return model.eval()
