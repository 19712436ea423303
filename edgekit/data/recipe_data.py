"""A recipe's data: its reader applied to a folder, and which images are the test split.

The test split is, in this order of precedence:
- ``--split all`` (validation only): every image of the folder is scored;
- ``--test-data DIR``: another folder, read by the same reader; all of ``--data`` trains;
- ``--split-file FILE``: the stems listed (one per line, ``#`` comments) are the test images;
- the data's own split: NEU-DET's ``Validation_Images/`` (+ ``Validation_Annotations/``), or a VOC
  tree's ``ImageSets/Main/test.txt`` (``val.txt`` when there is no test list);
- NEU-Seg's own ``images/test/`` (or ``val/``) beside ``images/training/``;
- else the recipe's seeded, class-stratified split (``data.split``: test_fraction, seed; with
  ``near_duplicates: true`` copies of one picture under flips stay on one side, see
  ``edgekit.data.near_duplicates``).

Images of the test split that also sit (byte-identical) among the training images are left out
of training, and the notes say how many.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.data.images import IMAGE_SUFFIXES, read_grey
from edgekit.data.masks import MaskDataset, load_masks, select_groups
from edgekit.data.neu import Dataset, Sample, boxed_layout, load_neu
from edgekit.data.near_duplicates import clusters
from edgekit.data.splits import grouped_split, stratified_split
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.recipes import Recipe

SPLITS = ("test", "all")
FORMATS = ("neu", "masks")
NEU_VALIDATION = ("Validation_Images", "Validation_Annotations")


@dataclass(frozen=True)
class DataSource:
    """Where a recipe's images come from and which of them are the test split (paths absolute, so a run
    folder's records resolve from any directory)."""
    root: Path
    test_root: Path | None = None
    split_file: Path | None = None
    split: str = "test"           # "all": score every image of ``root`` (validation)

    def __post_init__(self) -> None:
        for name in ("root", "test_root", "split_file"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().absolute())
        if self.split not in SPLITS:
            raise EdgekitError(f"--split {self.split!r}: expected one of {', '.join(SPLITS)}")

    def inputs(self) -> dict[str, Path]:
        """The files and folders a stage's manifest records (and ``build`` compares to resume)."""
        out = {"data": self.root}
        if self.test_root:
            out["test_data"] = self.test_root
        if self.split_file:
            out["split_file"] = self.split_file
        return out

    def check(self) -> None:
        """Fail early, naming the path, when a folder or the split file is missing."""
        for path in (self.root, self.test_root):
            if path is not None and not path.is_dir():
                raise EdgekitError(f"{path}: dataset folder not found")
        if self.split_file is not None and not self.split_file.is_file():
            raise EdgekitError(f"{self.split_file}: split file not found")


def as_source(data: DataSource | Path | str) -> DataSource:
    return data if isinstance(data, DataSource) else DataSource(Path(data))


def recorded_source(run: Path) -> DataSource:
    """The data a build run used, from its ``build.json`` (paths absolute; a relative one, from older
    runs, is taken relative to the run folder)."""
    record = Path(run) / "build.json"
    if not record.is_file():
        raise EdgekitError(f"{run}: not a build run folder (no build.json)")
    try:
        data = json.loads(record.read_text())["data"]
    except (json.JSONDecodeError, KeyError):
        raise EdgekitError(f"{record}: corrupt build record (no data entry)") from None
    paths = data if isinstance(data, dict) else {"data": data}
    found = {k: (Path(v) if Path(v).is_absolute() else Path(run) / v) for k, v in paths.items()}
    src = DataSource(found["data"], found.get("test_data"), found.get("split_file"))
    src.check()
    return src


@dataclass
class SplitData:
    dataset: Dataset           # the images under ``--data`` (the training folder)
    train: list[Sample]
    test: list[Sample]
    split: str = ""            # how the test split was chosen, in words
    test_root: Path | None = None
    fraction: float | None = None   # the recipe's test fraction, when its seeded split chose the test images

    @property
    def split_id(self) -> str:
        """A fingerprint of the test images' names (sorted): two builds with the same id scored the same
        images, on any machine and whichever way the split was chosen."""
        names = "\n".join(sorted(Path(s.path).stem for s in self.test))
        return hashlib.sha256(names.encode()).hexdigest()[:12]

    def describe(self) -> dict:
        return {
            "root": str(self.dataset.root),
            "images": len(self.dataset.samples),
            "split": self.split,
            "split_id": self.split_id,
            **({"test_root": str(self.test_root)} if self.test_root else {}),
            "train": len(self.train),
            "test": len(self.test),
            "per_class": self.dataset.counts(),
            "test_per_class": {c: sum(s.label == k for s in self.test) for k, c in enumerate(self.dataset.classes)},
            "notes": self.dataset.notes,
        }


def read_split_file(path: Path) -> list[str]:
    """Stems of a split list: one per line, an image suffix allowed, blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise EdgekitError(f"{path}: not a text file of image names") from None
    stems = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            stems.append(Path(text).stem if Path(text).suffix.lower() in IMAGE_SUFFIXES else text)
    if not stems:
        raise EdgekitError(f"{path}: the split file lists no images")
    return stems


def _by_stems(samples: list[Sample], stems: list[str], listing: Path) -> tuple[list[Sample], list[Sample]]:
    """(rest, listed): the samples whose file stem is listed, every listed stem required."""
    index = {s.path.stem: s for s in samples}
    for n, stem in enumerate(stems, 1):
        if stem not in index:
            raise EdgekitError(f"{listing}: entry {n} {stem!r} names no image of the data set")
    wanted = set(stems)
    return [s for s in samples if s.path.stem not in wanted], [s for s in samples if s.path.stem in wanted]


def _voc_list(root: Path) -> Path | None:
    for name in ("test.txt", "val.txt"):
        if (root / "ImageSets" / "Main" / name).is_file():
            return root / "ImageSets" / "Main" / name
    return None


def reader(recipe: Recipe) -> Callable[[Path], Dataset]:
    """The recipe's data reader: ``data.format`` neu (NEU-CLS / NEU-DET / VOC folders, with each image's
    boxes where ``data.boxes`` says so) or masks (the mask layouts of ``edgekit.data.masks``)."""
    fmt = recipe.data.get("format", "neu")
    if fmt == "neu":
        boxes = bool(recipe.data.get("boxes", False))
        return lambda root: load_neu(root, recipe.classes, with_boxes=boxes)
    if fmt == "masks":
        groups = recipe.data.get("groups")
        return (lambda root: select_groups(load_masks(root), list(groups), str(recipe.path))) if groups else load_masks
    raise EdgekitError(f"{recipe.path}: data.format {fmt!r} is not one of {', '.join(FORMATS)}")


def _own_test_images(dataset: Dataset) -> tuple[str, list[Sample]] | None:
    """A mask data set's own test split: NEU-Seg's ``images/test/`` (or ``val/``) beside ``images/training/``."""
    if getattr(dataset, "layout", "") != "neu-seg":
        return None
    splits = {s.path.parent.name for s in dataset.samples}
    name = next((n for n in ("test", "val", "validation") if n in splits and len(splits) > 1), None)
    return (name, [s for s in dataset.samples if s.path.parent.name == name]) if name else None


def _without_copies_of(train: list, test: list, similarity: float) -> tuple[list, int]:
    """``train`` without the images that are copies (up to flips) of a test image, and how many were dropped: a
    fixed test list must not leak through its copies, as the recipe's own split keeps them on one side."""
    found = clusters([s.path for s in [*train, *test]], similarity)
    tested = set(found[len(train):])
    kept = [s for s, c in zip(train, found) if c not in tested]
    return kept, len(train) - len(kept)


def load_split(recipe: Recipe, data: DataSource | Path, needs: tuple[int, str] | None = None) -> SplitData:
    """Index the recipe's data and choose its train and test images (see the module docstring); ``needs``
    (training images a class needs, and for what): refuse a split too small for them (:func:`check_sizes`)."""
    read = reader(recipe)
    src = as_source(data)
    src.check()
    dataset = read(src.root)
    if src.split == "all":
        return SplitData(dataset, [], list(dataset.samples), f"all {len(dataset.samples)} images of the folder")
    test_ds: Dataset | None = None
    fraction = None
    if src.test_root is not None:
        test_ds = read(src.test_root)
        train, test, how = dataset.samples, test_ds.samples, f"test folder {src.test_root}"
    elif src.split_file is not None:
        train, test = _by_stems(dataset.samples, read_split_file(src.split_file), src.split_file)
        how = f"split file {src.split_file}"
        if recipe.data.get("split", {}).get("near_duplicates"):
            train, left = _without_copies_of(train, test, recipe.data["split"].get("similarity", 0.98))
            how += f"; {left} training image(s) that are flipped or repeated copies of test images left out"
    elif (own := _own_test_images(dataset)) is not None:
        name, test = own
        train = [s for s in dataset.samples if s.path.parent.name != name]
        how = f"the data's own {name} split"
    elif recipe.data.get("format", "neu") == "neu" and (src.root / NEU_VALIDATION[0]).is_dir():
        folders = (src.root / NEU_VALIDATION[0], src.root / NEU_VALIDATION[1])
        test_ds = load_neu(src.root, recipe.classes, with_boxes=bool(recipe.data.get("boxes", False)),
                           folders=folders)
        train, test, how = dataset.samples, test_ds.samples, "the data's own Validation_Images/ folder"
    elif recipe.data.get("format", "neu") == "neu" and boxed_layout(src.root) is not None and (listing := _voc_list(src.root)) is not None:
        train, test = _by_stems(dataset.samples, read_split_file(listing), listing)
        how = f"the data's own ImageSets/Main/{listing.name}"
    else:
        cfg = recipe.data.get("split", {})
        fraction, seed = cfg.get("test_fraction", 0.2), cfg.get("seed", 0)
        unit = "group" if isinstance(dataset, MaskDataset) else "class"
        how = f"recipe split: {fraction:.0%} of each {unit} held out, seed {seed}"
        if cfg.get("near_duplicates"):
            found = clusters([s.path for s in dataset.samples], cfg.get("similarity", 0.98))
            tr, te = grouped_split(dataset.labels(), found, fraction, seed)
            copies = len(found) - len(set(found))
            how += f"; flipped or repeated copies kept on one side ({copies} image(s) are copies of another)"
        else:
            tr, te = stratified_split(dataset.labels(), fraction, seed)
        train, test = [dataset.samples[i] for i in tr], [dataset.samples[i] for i in te]
    if test_ds is not None:
        dataset.notes.extend(f"test data: {n}" for n in test_ds.notes)
        in_test = {s.sha256 for s in test}
        overlap = [s for s in train if s.sha256 in in_test]
        if overlap:
            train = [s for s in train if s.sha256 not in in_test]
            dataset.notes.append(f"{len(overlap)} training image(s) are byte-identical to test images: "
                                 "left out of training")
    split = SplitData(dataset, list(train), list(test), how, src.test_root, fraction)
    if needs is not None:
        check_sizes(split, *needs)
    if not test:
        raise EdgekitError(f"{src.split_file or src.test_root or src.root}: the test split holds no images")
    return split


def check_sizes(split: SplitData, train_per_class: int, train_needs: str) -> None:
    """Refuse, before any work, a split too small for the build: every class (group) of the data needs at least
    one test image and ``train_per_class`` training images (``train_needs`` says for what). One line naming the
    folder, what each class needs and what each has."""
    classes = split.dataset.classes
    train = [sum(s.label == k for s in split.train) for k in range(len(classes))]
    test = [sum(s.label == k for s in split.test) for k in range(len(classes))]
    short = [k for k in range(len(classes)) if test[k] < 1 or train[k] < train_per_class]
    if not short:
        return
    where = split.test_root or split.dataset.root
    have = ", ".join(f"{classes[k]} {train[k]} training + {test[k]} test" for k in short)
    fraction = split.fraction
    whole = (f" (the recipe's {fraction:.0%} test split: {images_per_class(fraction, train_per_class)} images a class)"
             if fraction else f" (test split: {split.split})")
    raise EdgekitError(f"{where}: too few images for the build: each class needs at least 1 test image and "
                       f"{train_per_class} training images ({train_needs}){whole}; {have}")


def images_per_class(fraction: float, train_per_class: int) -> int:
    """The fewest images of a class the recipe's stratified split turns into 1 test + ``train_per_class``
    training images (:func:`edgekit.data.splits.stratified_split`'s rounding)."""
    n = train_per_class + 1
    while n - max(1, int(round(n * fraction))) < train_per_class:
        n += 1
    return n


def read_images(samples: list[Sample], desc: str = "reading images") -> list[np.ndarray]:
    return [read_grey(s.path) for s in bar(samples, desc)]
