"""Mask data for segmentation: the public layouts as their copies have them, read strictly.

Layouts, recognised by their folders (first match):
- NEU-Seg: ``images/<split>/*.jpg`` + ``annotations/<split>/*.png``, values 0 (background) and
  1..3 (defect classes); the folder name is the split.
- Magnetic-Tile: ``MT_<Class>/Imgs/<name>.jpg`` + ``<name>.png``, 0/255 masks (many anti-aliased,
  with grey levels between), varying image sizes; ``MT_Free`` holds the defect-free images.
- KolektorSDD: ``kosNN/PartK.jpg`` + ``PartK_label.bmp``.
- Severstal: ``train.csv`` (``ImageId_ClassId,EncodedPixels``, the first release, or
  ``ImageId,ClassId,EncodedPixels``) + ``train_images/``; an image without a row is defect-free.
- A plain ``images/`` + ``masks/`` folder (mask named as its image, any image suffix).

A mask is returned as a class map (uint8, 0 background, 1.. defect classes). Binary masks stored
0/255 become 0/1; grey levels between (anti-aliasing, JPEG damage) are cut at 128 and counted. A
mask of another size than its image, or an image without a mask, follows the recipe's choice:
``resize`` / ``error``, and ``defect-free`` / ``error``.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgekit.data.images import IMAGE_SUFFIXES, check_image, read_grey
from edgekit.data.neu import images_in
from edgekit.errors import EdgekitError

LAYOUTS = ("neu-seg", "magnetic-tile", "kolektor", "severstal", "images-masks")
ON_SIZE = ("resize", "error")
ON_MISSING = ("defect-free", "error")


@dataclass(frozen=True)
class MaskSample:
    image: Path
    mask: Path | None                     # None: no mask file (defect-free, or a Severstal row set)
    group: str                            # class folder, split or part: what a split stratifies on
    sha256: str
    runs: tuple[tuple[int, str], ...] = ()   # Severstal: (class, run-length encoding) per defect class

    @property
    def name(self) -> str:
        return self.image.name


@dataclass
class MaskDataset:
    root: Path
    layout: str
    samples: list[MaskSample]
    classes: int                          # defect classes the layout can hold (values 1..classes)
    notes: list[str] = field(default_factory=list)


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
    raise EdgekitError(f"{root}: no mask data layout found (expected NEU-Seg images/ + annotations/, Magnetic-Tile "
                       "MT_*/Imgs/, KolektorSDD kosNN/, Severstal train.csv, or images/ + masks/)")


def _pairs(root: Path, layout: str) -> list[tuple[Path, Path | None, str, tuple]]:
    """(image, mask or None, group, runs) for every image of the layout."""
    out: list[tuple[Path, Path | None, str, tuple]] = []
    if layout == "neu-seg":
        for split in sorted(p for p in (root / "images").iterdir() if p.is_dir()):
            for image in images_in(split):
                mask = root / "annotations" / split.name / f"{image.stem}.png"
                out.append((image, mask if mask.is_file() else None, split.name, ()))
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
    else:
        for image in images_in(root / "images"):
            masks = [m for m in (root / "masks").glob(f"{image.stem}.*") if m.suffix.lower() in IMAGE_SUFFIXES]
            out.append((image, masks[0] if masks else None, "images", ()))
    return out


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
    seen: dict[str, Path] = {}
    samples, notes = [], []
    for image, mask, group, runs in pairs:
        data = image.read_bytes()
        check_image(image, data)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            notes.append(f"duplicate image {image.name} = {seen[digest].name}: kept once")
            continue
        seen[digest] = image
        samples.append(MaskSample(image, mask, group, digest, runs))
    missing = sum(s.mask is None and not s.runs for s in samples)
    if missing and layout not in ("severstal",):
        notes.append(f"{missing} image(s) without a mask file")
    classes = {"neu-seg": 3, "severstal": 4}.get(layout, 1)
    counts = Counter(s.group for s in samples)
    notes.append("images per group: " + ", ".join(f"{g} {n}" for g, n in sorted(counts.items())))
    return MaskDataset(root, layout, samples, classes, notes)


def read_mask(sample: MaskSample, shape: tuple[int, int], on_size: str = "error",
              on_missing: str = "defect-free") -> tuple[np.ndarray, bool]:
    """The sample's class map at the image's ``shape`` (height, width), and whether grey levels had to be
    cut (anti-aliased or JPEG-damaged binary masks)."""
    h, w = shape
    if sample.runs:
        out = np.zeros((h, w), np.uint8)
        for cls, encoding in sample.runs:
            out[rle_decode(encoding, h, w, f"{sample.image.name} class {cls}")] = cls
        return out, False
    if sample.mask is None:
        if on_missing == "error":
            raise EdgekitError(f"{sample.image}: no mask for this image")
        return np.zeros((h, w), np.uint8), False
    mask = read_grey(sample.mask)
    if mask.shape != (h, w):
        if on_size == "error":
            raise EdgekitError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {w}x{h}")
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    values = np.unique(mask)
    if values.max(initial=0) <= 3:             # class values already (NEU-Seg 0..3, 0/1 masks)
        return mask, False
    cut = not set(values.tolist()) <= {0, 255}
    return (mask >= 128).astype(np.uint8), cut
