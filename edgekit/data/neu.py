"""Readers for NEU-CLS / NEU-DET style folders (and the built-in generator's output).

Layouts understood, in this order:
- ``IMAGES/`` (+ optional ``ANNOTATIONS/`` VOC XML): NEU-DET and the built-in data;
- one sub-folder per class (``<root>/<class>/*.jpg``);
- a flat folder of class-prefixed files (NEU-CLS: ``Cr_1.bmp`` or ``crazing_1.jpg``).

The image-level class is the file-name prefix (NEU-CLS semantics). Real-data quirks handled:
annotation files are matched by file stem, not by their ``<filename>`` field (some lack the
suffix); byte-identical images stored under two names are kept once; annotations whose boxes
name another class than the file are counted and reported.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.data.classes import NEU_CLASSES, NEU_SHORT
from edgekit.data.images import IMAGE_SUFFIXES
from edgekit.data.voc import Box, read_voc
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    sha256: str
    boxes: tuple[Box, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Dataset:
    root: Path
    classes: tuple[str, ...]
    samples: list[Sample]
    notes: list[str] = field(default_factory=list)

    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in self.classes}
        for s in self.samples:
            out[self.classes[s.label]] += 1
        return out


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _class_lookup(classes: tuple[str, ...]) -> dict[str, int]:
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    for long, short in NEU_SHORT.items():
        if long in classes:
            lookup.setdefault(short.lower(), classes.index(long))
    return lookup


def class_of(path: Path, classes: tuple[str, ...], folder_class: str | None = None) -> int:
    lookup = _class_lookup(classes)
    if folder_class is not None:
        key = folder_class.lower()
    else:
        m = re.match(r"^(.*?)[_-]?\d+$", path.stem)
        key = (m.group(1) if m else path.stem).lower()
    if key not in lookup:
        raise EdgekitError(
            f"{path}: unknown class {key!r} (file names must start with one of: {', '.join(classes)})"
        )
    return lookup[key]


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key)


def load_neu(root: Path, classes: tuple[str, ...] = NEU_CLASSES, with_boxes: bool = False) -> Dataset:
    """Index a NEU-style folder. Images are hashed (for duplicates and calibration manifests)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgekitError(f"{root}: dataset folder not found")
    entries: list[tuple[Path, int]] = []
    ann_dir: Path | None = None
    if (root / "IMAGES").is_dir():
        entries = [(p, class_of(p, classes)) for p in _images_in(root / "IMAGES")]
        ann_dir = root / "ANNOTATIONS" if (root / "ANNOTATIONS").is_dir() else None
    else:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if subdirs and not _images_in(root):
            for d in subdirs:
                label = class_of(d, classes, folder_class=d.name)
                entries += [(p, label) for p in _images_in(d)]
        else:
            entries = [(p, class_of(p, classes)) for p in _images_in(root)]
    if not entries:
        raise EdgekitError(f"{root}: no images found (expected IMAGES/, class folders or class-prefixed files)")
    if with_boxes and ann_dir is None:
        raise EdgekitError(f"{root}: no ANNOTATIONS/ folder with VOC XML boxes")

    notes: list[str] = []
    seen: dict[str, Path] = {}
    samples: list[Sample] = []
    mismatched = dropped_boxes = 0
    for path, label in entries:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            notes.append(f"duplicate image {path.name} = {seen[digest].name}: kept once")
            continue
        seen[digest] = path
        boxes: list[Box] = []
        if ann_dir is not None:
            xml = ann_dir / f"{path.stem}.xml"
            if xml.is_file():
                boxes, dropped = read_voc(xml, classes)
                dropped_boxes += dropped
                if any(b.label != label for b in boxes):
                    mismatched += 1
            elif with_boxes:
                raise EdgekitError(f"{xml}: annotation missing for image {path.name}")
        samples.append(Sample(path, label, digest, tuple(boxes)))
    if mismatched:
        notes.append(f"{mismatched} annotation file(s) hold boxes of another class than the file name says")
    if dropped_boxes:
        notes.append(f"{dropped_boxes} degenerate box(es) (zero width or height) dropped")
    return Dataset(root, tuple(classes), samples, notes)
