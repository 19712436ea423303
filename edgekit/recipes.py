"""Recipes: a paper's model, data, pre-processing, schedule, quantization and gates, as YAML."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from edgekit.camera.preprocess import Preprocess
from edgekit.errors import EdgekitError
from edgekit.pruning import PruneSpec
from edgekit.resources import bundled_dir
from edgekit.sparsity import SparsitySpec

TASKS = ("classification", "detection", "segmentation", "segmentation+decision")
REQUIRED = ("name", "task", "paper", "model", "data", "preprocess", "train", "quantize", "validate")
OPTIONAL = ("description", "detection", "segmentation", "decision", "prune", "sparsity", "quick", "extends")


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str
    description: str
    paper: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    preprocess: Preprocess
    train: dict[str, Any]
    quantize: dict[str, Any]
    validate: dict[str, Any]
    path: Path
    detection: dict[str, Any] = field(default_factory=dict)
    segmentation: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)   # segmentation+decision: supervision, loss, threshold
    prune: dict[str, Any] = field(default_factory=dict)   # structured pruning + fine-tuning (edgekit.pruning)
    sparsity: dict[str, Any] = field(default_factory=dict)  # 2:4 sparsity + fine-tuning (edgekit.sparsity)
    quick: bool = False                 # the recipe's ``quick:`` overrides are applied
    has_quick: bool = False             # the recipe has a ``quick:`` profile

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.data["classes"])

    def resolved(self) -> dict[str, Any]:
        """The recipe as it was applied (``extends`` and any ``quick:`` profile merged in), as a mapping that
        loads back as the same recipe: what a compiled artifact carries to the line (``recipe.yaml``)."""
        out = {"name": self.name, "task": self.task, "description": self.description,
               **{k: copy.deepcopy(getattr(self, k)) for k in ("paper", "model", "data", "train", "quantize",
                                                                "validate", "detection", "segmentation", "decision",
                                                                "prune", "sparsity")},
               "preprocess": self.preprocess.config()}
        return {k: v for k, v in out.items() if v or k in REQUIRED}

    def on_builtin_data(self) -> "Recipe":
        """This recipe as it trains on the built-in generated data: ``data.builtin.train`` (a shorter schedule
        for the demo; a real dataset's belongs in ``train``) merged into ``train``, ``data.builtin.split`` (the
        demo's own test split) into ``data.split``."""
        builtin = self.data.get("builtin", {})
        train, split = builtin.get("train"), builtin.get("split")
        return replace(self, train=merged(self.train, train or {}),
                       data={**self.data, "split": merged(self.data.get("split", {}), split or {})})

    def with_pixel_labels(self, count: float) -> "Recipe":
        """This recipe in mixed supervision with ``count`` pixel-labelled positives (or that fraction of them)."""
        return replace(self, decision={**self.decision, "supervision": "mixed", "pixel_labels": count})

    def train_settings(self, pretrained: bool) -> dict[str, Any]:
        """The training schedule, with the ``from_scratch`` overrides applied when not pretrained."""
        settings = {k: v for k, v in self.train.items() if k != "from_scratch"}
        if not pretrained:
            settings.update(self.train.get("from_scratch", {}))
        return settings


def recipes_dir() -> Path:
    """The bundled ``recipes/`` folder (installed package data, or the source checkout's)."""
    return bundled_dir("edgekit._recipes", "recipes")


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied key by key, recursing into mappings."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file's mapping; ``extends: NAME`` (a bundled recipe, or a YAML path relative to this
    file) takes that recipe and overrides it key by key with this file's."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EdgekitError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from exc
    except UnicodeDecodeError:
        raise EdgekitError(f"{path}: not a text file") from None
    if not isinstance(raw, dict):
        raise EdgekitError(f"{path}: a recipe must be a YAML mapping")
    if "extends" not in raw:
        return raw
    name = str(raw.pop("extends"))
    parent = path.parent / name if name.endswith((".yaml", ".yml")) else recipes_dir() / f"{name}.yaml"
    if not parent.is_file():
        raise EdgekitError(f"{path}: extends: {name!r}: no such recipe ({parent})")
    if parent.resolve() in seen:
        raise EdgekitError(f"{path}: extends: {name!r} leads back to itself")
    base = _read(parent, (*seen, path.resolve()))
    return merged(base, raw)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


# (section, key) -> (check, what it must be); a key that is absent keeps its default
_TYPED: dict[tuple[str, str], tuple[Any, str]] = {
    ("preprocess", "size"): (_is_count, "a positive whole number of pixels"),
    ("preprocess", "channels"): (lambda v: v in (1, 3), "1 or 3"),
    ("preprocess", "channel_order"): (lambda v: v in ("bgr", "rgb"), "bgr or rgb"),
    ("preprocess", "scale"): (_is_number, "a number"),
    ("preprocess", "mean"): (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    ("preprocess", "std"): (lambda v: isinstance(v, list) and v and all(_is_number(x) and x != 0 for x in v),
                            "a list of non-zero numbers"),
    ("train", "epochs"): (_is_count, "a positive whole number"),
    ("train", "batch_size"): (_is_count, "a positive whole number"),
    ("train", "lr"): (lambda v: _is_number(v) and v > 0, "a positive number"),
    ("model", "name"): (lambda v: isinstance(v, str) and v, "a model name"),
    ("model", "args"): (lambda v: isinstance(v, dict), "a mapping"),
    ("data", "boxes"): (lambda v: isinstance(v, bool), "true or false"),
    ("data", "classes"): (lambda v: isinstance(v, list) and v and all(isinstance(c, str) and c for c in v),
                          "a list of class names"),
    ("validate", "max_drop"): (lambda v: isinstance(v, dict) and all(map(_is_number, v.values())),
                               "a mapping of precision to points"),
}


def _check_types(path: Path, raw: dict[str, Any]) -> None:
    """Refuse a wrongly typed recipe when it loads, naming the file and the field."""
    if not isinstance(raw["name"], str) or not raw["name"]:
        raise EdgekitError(f"{path}: name: must be a non-empty string, not {raw['name']!r}")
    for section in ("paper", "model", "data", "preprocess", "train", "quantize", "validate"):
        if not isinstance(raw[section], dict):
            raise EdgekitError(f"{path}: {section}: must be a mapping, not {type(raw[section]).__name__}")
    for (section, key), (ok, what) in _TYPED.items():
        if key in raw[section] and not ok(raw[section][key]):
            raise EdgekitError(f"{path}: {section}.{key}: must be {what}, not {raw[section][key]!r}")


def _parse(path: Path, quick: bool = False) -> Recipe:
    raw = _read(path, ())
    for key in REQUIRED:
        if key not in raw:
            raise EdgekitError(f"{path}: {key}: missing")
    unknown = set(raw) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise EdgekitError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    if quick:
        if not isinstance(raw.get("quick"), dict):
            raise EdgekitError(f"{path}: no quick: profile in this recipe")
        raw = merged(raw, raw["quick"])
    if raw["task"] not in TASKS:
        raise EdgekitError(f"{path}: task: {raw['task']!r} is not one of {', '.join(TASKS)}")
    _check_types(path, raw)
    try:
        pre = Preprocess.from_config(raw["preprocess"])
    except TypeError as exc:
        raise EdgekitError(f"{path}: preprocess: {exc}") from exc
    prune = raw.get("prune") or {}
    if not isinstance(prune, dict):
        raise EdgekitError(f"{path}: prune: must be a mapping")
    PruneSpec.from_recipe(prune, str(path))  # refuse a malformed section when the recipe loads
    sparsity = raw.get("sparsity") or {}
    if not isinstance(sparsity, dict):
        raise EdgekitError(f"{path}: sparsity: must be a mapping")
    SparsitySpec.from_recipe(sparsity, str(path))
    if "classes" not in raw["data"]:
        raise EdgekitError(f"{path}: data.classes: missing")
    return Recipe(
        name=raw["name"], task=raw["task"], description=raw.get("description", ""), paper=raw["paper"],
        model=raw["model"], data=raw["data"], preprocess=pre, train=raw["train"], quantize=raw["quantize"],
        validate=raw["validate"], path=path, detection=raw.get("detection", {}),
        segmentation=raw.get("segmentation", {}), decision=raw.get("decision", {}), prune=prune, sparsity=sparsity,
        quick=quick,
        has_quick=isinstance(raw.get("quick"), dict),
    )


def list_recipes() -> list[Recipe]:
    return [_parse(p) for p in sorted(recipes_dir().glob("*.yaml"))]


def load_recipe(name_or_path: str | Path, quick: bool = False) -> Recipe:
    """A recipe by name (``recipes/<name>.yaml``) or a path to a user's YAML file; ``quick``
    applies the recipe's ``quick:`` profile (a short run on the built-in data)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise EdgekitError(f"{p}: recipe file not found")
        return _parse(p, quick)
    candidate = recipes_dir() / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = ", ".join(r.path.stem for r in list_recipes())
        raise EdgekitError(f"unknown recipe {name_or_path!r} (known: {known})")
    return _parse(candidate, quick)
