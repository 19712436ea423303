"""Readers for NEU-CLS / NEU-DET style folders (and the built-in generator's output).

Layouts understood, in this order:
- ``IMAGES/`` (+ optional ``ANNOTATIONS/`` VOC XML): NEU-DET and the built-in data; public NEU-DET
  copies add ``Validation_Images/`` + ``Validation_Annotations/`` (see ``edgekit.data.recipe_data``);
- ``JPEGImages/`` + ``Annotations/`` (+ ``ImageSets/Main/*.txt``): a Pascal VOC tree;
- one sub-folder per class (``<root>/<class>/*.jpg``);
- a flat folder of class-prefixed files (NEU-CLS: ``Cr_1.bmp`` or ``crazing_1.jpg``).

The image-level class is the file-name prefix (NEU-CLS semantics); in a VOC tree whose file
names carry no class, the most frequent class of the image's boxes. Every image is decoded
when the folder is indexed (an empty, truncated or non-image file is an error naming it) and
every box is checked against its image. Real-data quirks handled, each counted in the notes:
annotation files are matched by file stem, not by their ``<filename>`` field (some lack the
suffix); byte-identical images stored under two names are kept once; annotations whose boxes
name another class than the file; annotation files without an image.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.data.classes import NEU_CLASSES, NEU_SHORT
from edgekit.data.images import IMAGE_SUFFIXES, check_image
from edgekit.data.voc import Box, read_voc
from edgekit.errors import EdgekitError
from edgekit.progress import bar

# (images folder, annotations folder) pairs, in the order they are looked for
BOXED_LAYOUTS = (("IMAGES", "ANNOTATIONS"), ("JPEGImages", "Annotations"))


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    sha256: str
    boxes: tuple[Box, ...] = ()
    mask: Path | None = None                  # mask data: the mask file (None: none, or Severstal runs)
    runs: tuple[tuple[int, str], ...] = ()    # Severstal: (class, run-length encoding) per defect class

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


def class_of(path: Path, classes: tuple[str, ...], folder_class: str | None = None,
             strict: bool = True) -> int | None:
    """The class a file name (or its class folder) says; None when ``strict`` is off and it says none."""
    lookup = _class_lookup(classes)
    if folder_class is not None:
        key = folder_class.lower()
    else:
        m = re.match(r"^(.*?)[_-]?\d+$", path.stem)
        key = (m.group(1) if m else path.stem).lower()
    if key in lookup:
        return lookup[key]
    if not strict:
        return None
    raise EdgekitError(f"{path}: unknown class {key!r} (file names must start with one of: {', '.join(classes)})")


def images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key)


def boxed_layout(root: Path) -> tuple[Path, Path] | None:
    """The (images, annotations) folders of a NEU-DET or VOC tree under ``root``, if it is one."""
    for images, notes in BOXED_LAYOUTS:
        if (root / images).is_dir():
            return root / images, root / notes
    return None


def load_neu(root: Path, classes: tuple[str, ...] = NEU_CLASSES, with_boxes: bool = False,
             folders: tuple[Path, Path] | None = None) -> Dataset:
    """Index a NEU-style folder; ``folders`` names its (images, annotations) folders explicitly
    (NEU-DET's ``Validation_*`` pair). Images are decoded to check them and hashed (duplicates,
    calibration manifests)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgekitError(f"{root}: dataset folder not found")
    boxed = folders or boxed_layout(root)
    entries: list[tuple[Path, int | None]] = []
    ann_dir: Path | None = None
    if boxed is not None:
        image_dir, ann_dir = boxed
        named = image_dir.name != "JPEGImages"   # VOC trees name images by number, not by class
        entries = [(p, class_of(p, classes, strict=named or not ann_dir.is_dir())) for p in images_in(image_dir)]
        ann_dir = ann_dir if ann_dir.is_dir() else None
    else:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if subdirs and not images_in(root):
            for d in subdirs:
                label = class_of(d, classes, folder_class=d.name)
                entries += [(p, label) for p in images_in(d)]
        else:
            entries = [(p, class_of(p, classes)) for p in images_in(root)]
    where = boxed[0] if boxed else root
    if not entries:
        raise EdgekitError(f"{where}: no images found (expected IMAGES/, class folders or class-prefixed files)")
    if with_boxes and ann_dir is None:
        raise EdgekitError(f"{root}: no {boxed[1].name if boxed else 'ANNOTATIONS'}/ folder with VOC XML boxes")

    notes: list[str] = []
    seen: dict[str, Path] = {}
    samples: list[Sample] = []
    mismatched = 0
    for path, label in bar(entries, f"checking images in {where.name}"):
        data = path.read_bytes()
        size = check_image(path, data)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            notes.append(f"duplicate image {path.name} = {seen[digest].name}: kept once")
            continue
        seen[digest] = path
        boxes: list[Box] = []
        if ann_dir is not None:
            xml = ann_dir / f"{path.stem}.xml"
            if xml.is_file():
                boxes = read_voc(xml, classes, size)
            elif with_boxes:
                raise EdgekitError(f"{xml}: annotation missing for image {path.name}")
        if label is None:
            if not boxes:
                class_of(path, classes)  # raises: neither the name nor a box says the class
            label = Counter(b.label for b in boxes).most_common(1)[0][0]
        elif any(b.label != label for b in boxes):
            mismatched += 1
        samples.append(Sample(path, label, digest, tuple(boxes)))
    if mismatched:
        notes.append(f"{mismatched} annotation file(s) hold boxes of another class than the file name says")
    if ann_dir is not None:
        stems = {p.stem for p, _ in entries}
        orphans = sorted((p.name for p in ann_dir.glob("*.xml") if p.stem not in stems), key=lambda n: _natural_key(Path(n)))
        if orphans:
            shown = ", ".join(orphans[:5]) + (", ..." if len(orphans) > 5 else "")
            notes.append(f"{len(orphans)} annotation file(s) in {ann_dir.name}/ without an image, ignored: {shown}")
    return Dataset(root, tuple(classes), samples, notes)
