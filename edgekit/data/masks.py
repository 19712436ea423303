"""Mask data for segmentation: the public layouts as their copies have them, read strictly.

Layouts, recognised by their folders (first match):
- NEU-Seg: ``images/<split>/*.jpg`` + ``annotations/<split>/*.png``, values 0 (background) and
  1..3 (defect classes); the folder name is the split, the group of an image the class covering most
  of its mask.
- Magnetic-Tile: ``MT_<Class>/Imgs/<name>.jpg`` + ``<name>.png``, 0/255 masks (many anti-aliased,
  with grey levels between), varying image sizes; ``MT_Free`` holds the defect-free images.
- KolektorSDD: ``kosNN/PartK.jpg`` + ``PartK_label.bmp``.
- Severstal: ``train.csv`` (``ImageId_ClassId,EncodedPixels``, the first release, or
  ``ImageId,ClassId,EncodedPixels``) + ``train_images/``; an image without a row is defect-free.
- A plain ``images/`` + ``masks/`` folder (mask named as its image, any image suffix).
- The built-in generated data: ``IMAGES/`` + ``MASKS/`` (values 0 and class index + 1).

Samples are grouped (the class folder, the split, the part, the file-name class): the groups are
the data set's ``classes``, what splits and calibration sets stratify on.

A mask is returned as a class map (uint8, 0 background, 1.. defect classes). A mask whose values
stay below 128 is taken as class values (NEU-Seg 0..3, 0/1, the built-in 0..6); otherwise it is a
binary mask, cut at 128 (0/255 masks, anti-aliased or JPEG-damaged ones, counted). A
mask of another size than its image, or an image without a mask, follows the recipe's choice:
``resize`` / ``error``, and ``defect-free`` / ``error``.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edgekit.data.images import IMAGE_SUFFIXES, check_image, read_grey
from edgekit.data.neu import Dataset, Sample, class_of, images_in
from edgekit.data.classes import FREE, NEU_CLASSES
from edgekit.errors import EdgekitError
from edgekit.progress import bar

LAYOUTS = ("neu-seg", "magnetic-tile", "kolektor", "severstal", "images-masks", "builtin")
ON_SIZE = ("resize", "error")
ON_MISSING = ("defect-free", "error")


@dataclass
class MaskDataset(Dataset):
    """A mask data set: ``classes`` are its groups; ``mask_classes`` the defect values it can hold."""
    layout: str = ""
    mask_classes: int = 1


# --------------------------------------------------------------------------- run-length encoding
def rle_decode(text: str, height: int, width: int, where: str = "RLE") -> np.ndarray:
    """Severstal's run-length encoding -> bool mask (height, width): pairs of 1-based start and length,
    pixels numbered top to bottom, then left to right (column-major)."""
    values = text.split()
    if len(values) % 2:
        raise EdgekitError(f"{where}: odd number of values in the run-length encoding")
    try:
        pairs = np.asarray(values, np.int64).reshape(-1, 2)
    except ValueError:
        raise EdgekitError(f"{where}: non-numeric value in the run-length encoding") from None
    flat = np.zeros(height * width, bool)
    for start, length in pairs:
        if start < 1 or length < 1 or start - 1 + length > flat.size:
            raise EdgekitError(f"{where}: run {start} {length} lies outside a {width}x{height} image")
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape(width, height).T


def rle_encode(mask: np.ndarray) -> str:
    """bool mask (height, width) -> Severstal's run-length encoding (column-major, 1-based starts)."""
    flat = np.concatenate([[False], np.asarray(mask, bool).T.reshape(-1), [False]])
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


# --------------------------------------------------------------------------- layouts
def detect_layout(root: Path) -> str:
    if (root / "images").is_dir() and (root / "annotations").is_dir():
        return "neu-seg"
    if any(p.is_dir() and p.name.startswith("MT_") for p in root.iterdir()):
        return "magnetic-tile"
    if any(p.is_dir() and re.fullmatch(r"kos\d+", p.name) for p in root.iterdir()):
        return "kolektor"
    if (root / "train.csv").is_file():
        return "severstal"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "images-masks"
    if (root / "IMAGES").is_dir() and (root / "MASKS").is_dir():
        return "builtin"
    raise EdgekitError(f"{root}: no mask data layout found (expected NEU-Seg images/ + annotations/, Magnetic-Tile "
                       "MT_*/Imgs/, KolektorSDD kosNN/, Severstal train.csv, images/ + masks/, or IMAGES/ + MASKS/)")


def _pairs(root: Path, layout: str) -> list[tuple[Path, Path | None, str, tuple]]:
    """(image, mask or None, group, runs) for every image of the layout."""
    out: list[tuple[Path, Path | None, str, tuple]] = []
    if layout == "neu-seg":
        for split in sorted(p for p in (root / "images").iterdir() if p.is_dir()):
            for image in images_in(split):
                mask = root / "annotations" / split.name / f"{image.stem}.png"
                out.append((image, mask if mask.is_file() else None, _main_class(mask), ()))
    elif layout == "magnetic-tile":
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("MT_")):
            imgs = folder / "Imgs" if (folder / "Imgs").is_dir() else folder
            for image in (p for p in images_in(imgs) if p.suffix.lower() == ".jpg"):
                mask = image.with_suffix(".png")
                out.append((image, mask if mask.is_file() else None, folder.name[3:], ()))
    elif layout == "kolektor":
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"kos\d+", p.name)):
            for image in (p for p in images_in(folder) if not p.stem.endswith("_label")):
                mask = folder / f"{image.stem}_label.bmp"
                out.append((image, mask if mask.is_file() else None, folder.name, ()))
    elif layout == "severstal":
        runs = _severstal_runs(root / "train.csv")
        folder = root / "train_images"
        if not folder.is_dir():
            raise EdgekitError(f"{folder}: Severstal images folder not found beside train.csv")
        for image in images_in(folder):
            found = tuple(sorted(runs.pop(image.name, {}).items()))
            out.append((image, None, "defect" if found else "free", found))
        if runs:
            raise EdgekitError(f"{root / 'train.csv'}: rows for {len(runs)} image(s) not in train_images/, "
                               f"e.g. {next(iter(runs))}")
    elif layout == "builtin":
        groups = NEU_CLASSES + ((FREE,) if (root / "synth.json").is_file()
                                and json.loads((root / "synth.json").read_text()).get("defect_free") else ())
        for image in images_in(root / "IMAGES"):
            mask = root / "MASKS" / f"{image.stem}.png"
            out.append((image, mask if mask.is_file() else None, groups[class_of(image, groups)], ()))
    else:
        for image in images_in(root / "images"):
            masks = [m for m in (root / "masks").glob(f"{image.stem}.*") if m.suffix.lower() in IMAGE_SUFFIXES]
            out.append((image, masks[0] if masks else None, "images", ()))
    return out


def _main_class(mask: Path) -> str:
    """NEU-Seg's group of an image: the defect class covering most of its mask ("class 2"), or "free"."""
    if not mask.is_file():
        return "free"
    values = np.bincount(read_grey(mask).ravel(), minlength=256)[1:128]
    return f"class {int(values.argmax()) + 1}" if values.any() else "free"


def _severstal_runs(path: Path) -> dict[str, dict[int, str]]:
    """train.csv in either release's form -> {image: {class: encoding}} (empty encodings skipped)."""
    runs: dict[str, dict[int, str]] = {}
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise EdgekitError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            if header == ["ImageId_ClassId", "EncodedPixels"]:
                image, cls = row[0].rsplit("_", 1)
                encoding = row[1]
            elif header == ["ImageId", "ClassId", "EncodedPixels"]:
                image, cls, encoding = row
            else:
                raise EdgekitError(f"{path}: header {','.join(header)} is neither Severstal form "
                                   "(ImageId_ClassId,EncodedPixels or ImageId,ClassId,EncodedPixels)")
            cls_id = int(cls)
        except (ValueError, IndexError):
            raise EdgekitError(f"{path}: line {n} is not a Severstal row") from None
        if encoding.strip():
            runs.setdefault(image, {})[cls_id] = encoding
    return runs


def load_masks(root: Path) -> MaskDataset:
    """Index a mask data set: every image decoded to check it, hashed (byte-identical copies kept once)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgekitError(f"{root}: dataset folder not found")
    layout = detect_layout(root)
    pairs = _pairs(root, layout)
    if not pairs:
        raise EdgekitError(f"{root}: no images found in its {layout} layout")
    groups = tuple(sorted({group for _, _, group, _ in pairs}))
    seen: dict[str, Path] = {}
    samples, notes = [], []
    for image, mask, group, runs in bar(pairs, f"checking images in {root.name}"):
        data = image.read_bytes()
        check_image(image, data)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            notes.append(f"duplicate image {image.name} = {seen[digest].name}: kept once")
            continue
        seen[digest] = image
        samples.append(Sample(image, groups.index(group), digest, mask=mask, runs=runs))
    missing = sum(s.mask is None and not s.runs for s in samples)
    if missing and layout not in ("severstal",):
        notes.append(f"{missing} image(s) without a mask file")
    mask_classes = {"neu-seg": 3, "severstal": 4, "builtin": len(NEU_CLASSES)}.get(layout, 1)
    counts = Counter(groups[s.label] for s in samples)
    notes.append("images per group: " + ", ".join(f"{g} {n}" for g, n in sorted(counts.items())))
    return MaskDataset(root, groups, samples, notes, layout=layout, mask_classes=mask_classes)


def select_groups(dataset: MaskDataset, groups: list[str], where: str) -> MaskDataset:
    """Only the images of the named groups (e.g. Magnetic-Tile's defect classes without ``Free``)."""
    unknown = [g for g in groups if g not in dataset.classes]
    if unknown:
        raise EdgekitError(f"{where}: data.groups names {', '.join(map(repr, unknown))}, not a group of "
                           f"{dataset.root} (groups: {', '.join(dataset.classes)})")
    keep = tuple(g for g in dataset.classes if g in groups)
    samples = [replace(s, label=keep.index(dataset.classes[s.label])) for s in dataset.samples
               if dataset.classes[s.label] in keep]
    notes = [*dataset.notes, f"groups used: {', '.join(keep)} ({len(samples)} of {len(dataset.samples)} images)"]
    return MaskDataset(dataset.root, keep, samples, notes, layout=dataset.layout, mask_classes=dataset.mask_classes)


def read_mask(sample: Sample, shape: tuple[int, int], on_size: str = "error",
              on_missing: str = "defect-free") -> tuple[np.ndarray, bool]:
    """The sample's class map at the image's ``shape`` (height, width), and whether grey levels had to be
    cut (anti-aliased or JPEG-damaged binary masks)."""
    h, w = shape
    if sample.runs:
        out = np.zeros((h, w), np.uint8)
        for cls, encoding in sample.runs:
            out[rle_decode(encoding, h, w, f"{sample.name} class {cls}")] = cls
        return out, False
    if sample.mask is None:
        if on_missing == "error":
            raise EdgekitError(f"{sample.path}: no mask for this image")
        return np.zeros((h, w), np.uint8), False
    mask = read_grey(sample.mask)
    if mask.shape != (h, w):
        if on_size == "error":
            raise EdgekitError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {w}x{h}")
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return class_map(mask)


def class_map(mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """A mask file's grey levels as class values, and whether grey levels had to be cut at 128."""
    values = np.unique(mask)
    if values.max(initial=0) < 128:            # class values already (NEU-Seg 0..3, 0/1, built-in 0..6)
        return mask, False
    cut = not set(values.tolist()) <= {0, 255}
    return (mask >= 128).astype(np.uint8), cut
