"""Calibration-set manifests: which images, how they were chosen, and their hashes.

A manifest is versioned data (``calibration/<recipe>/<name>.yaml``); its ``sha256`` is computed
from the image contents alone, so the same images give the same key wherever they live. A
calibration *result* (activation ranges) is cached under that key together with the model's
hash, the pre-processing and the method (see stages/quantize.py).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgekit.artifacts import atomic_write_text, sha256_file
from edgekit.data.recipe_data import SplitData
from edgekit.data.splits import stratified_sample
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe

FORMAT = "edgekit-calibration/1"


def images_hash(digests: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def _strata(recipe: Recipe, data: SplitData) -> list:
    """The group of each training image that calibration samples evenly: its class, or finer where the task
    says (segmentation+decision: each group's defective and defect-free images apart)."""
    from edgekit.tasks import get_task

    task = get_task(recipe)
    return task.calibration_strata(recipe, data) if hasattr(task, "calibration_strata") else [s.label for s in data.train]


def select(recipe: Recipe, data: SplitData, name: str, per_class: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Class-stratified, seeded choice from the training split (never the test split)."""
    cfg = recipe.quantize.get("calibration", {})
    per_class = per_class if per_class is not None else cfg.get("per_class", 16)
    seed = seed if seed is not None else cfg.get("seed", 0)
    chosen = [data.train[i] for i in stratified_sample(_strata(recipe, data), per_class, seed)]
    root = data.dataset.root
    images = [
        {"path": s.path.relative_to(root).as_posix(), "class": data.dataset.classes[s.label], "sha256": s.sha256}
        for s in chosen
    ]
    return {
        "format": FORMAT,
        "name": name,
        "recipe": recipe.name,
        "selection": {
            "method": "class-stratified",
            "from": "train split",
            "split": recipe.data.get("split", {}),
            "per_class": per_class,
            "seed": seed,
        },
        "count": len(images),
        "sha256": images_hash([i["sha256"] for i in images]),
        "images": images,
    }


def held_aside(recipe: Recipe, data: SplitData, manifest: dict[str, Any], per_class: int, seed: int) -> SplitData:
    """Training images that are not in the calibration set, stratified as calibration is: what INT8's accuracy
    is measured on while quantizing (the test split stays unseen until validation)."""
    used = {e["sha256"] for e in manifest["images"]}
    free = [i for i, s in enumerate(data.train) if s.sha256 not in used]
    strata = _strata(recipe, data)
    picked = stratified_sample([strata[i] for i in free], per_class, seed)
    return SplitData(data.dataset, [], [data.train[free[i]] for i in picked], "held aside from calibration")


def batches(recipe: Recipe, images: list[Path]) -> list[np.ndarray]:
    """Each calibration image as the model takes it: pre-processed, a batch of one."""
    from edgekit.data.images import read_grey
    from edgekit.progress import bar

    return [recipe.preprocess(read_grey(p))[None] for p in bar(images, "calibration images")]


def write(manifest: dict[str, Any], path: Path) -> Path:
    atomic_write_text(Path(path), yaml.safe_dump(manifest, sort_keys=False))
    return Path(path)


def read(path: Path) -> dict[str, Any]:
    """Parse a manifest and check its form (no image is opened)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: calibration manifest not found")
    try:
        manifest = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EdgekitError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from exc
    except UnicodeDecodeError:
        raise EdgekitError(f"{path}: not a text file") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not manifest.get("images"):
        raise EdgekitError(f"{path}: not an {FORMAT} manifest with images")
    for n, entry in enumerate(manifest["images"], 1):
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)):
            raise EdgekitError(f"{path}: images entry {n} needs a path and a sha256")
    return manifest


def load(path: Path, data_root: Path) -> tuple[dict[str, Any], list[Path]]:
    """Read a manifest and check every listed image under ``data_root`` against its hash."""
    path = Path(path)
    manifest = read(path)
    files = []
    for entry in manifest["images"]:
        image = Path(data_root) / entry["path"]
        if not image.is_file():
            raise EdgekitError(f"{path}: lists {entry['path']}, which is not under {data_root}")
        if sha256_file(image) != entry["sha256"]:
            raise EdgekitError(f"{path}: {image} differs from the image the manifest was made from (sha256 mismatch)")
        files.append(image)
    if images_hash([e["sha256"] for e in manifest["images"]]) != manifest.get("sha256"):
        raise EdgekitError(f"{path}: sha256 field does not match the listed images (edited by hand?)")
    return manifest, files
