"""A segmentation recipe's ``segmentation:`` section, checked when first read: what the network
segments (binary defect/background, or each of ``data.classes``), how odd masks are treated, the loss
weights and the deployed post-processing.

Binary (``data.classes: [defect]``): one logit map, the defects are the mask values in
``defect_values`` (every non-zero value by default). Per class (several ``data.classes``): a logit
map for the background and one per class, softmax; a class's pixels are either the mask values
``class_values`` names for it (``class_source: values``; default value i + 1 for the i-th class, as
NEU-Seg and the built-in data write them), or every defect pixel of the images in the data group of
the class's name (``class_source: groups``: Magnetic-Tile's 0/255 masks under ``MT_<Class>/``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgekit.camera.post.segmentation import PostprocessSpec
from edgekit.data.masks import ON_MISSING, ON_SIZE
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class LossWeights:
    seg: float = 1.4           # lambda: BCE + Dice on the mask (seeds/004, 4.3)
    loc: float = 0.4           # mu: the same on LAM's bounding-rectangle map
    diff: float = 0.2          # nu: feature-difference loss between SPPM and LSPM
    bce: float = 0.5           # BCE's share inside loss_seg (Eq. 4's 1/2)
    epsilon: float = 1.0       # loss_diff = mean 1 / (MSE(V1, V2) + epsilon)


@dataclass(frozen=True)
class SegmentationSpec:
    classes: tuple[str, ...] = ("defect",)         # what is segmented (data.classes): one name is binary
    defect_values: tuple[int, ...] | None = None   # binary: mask values that are defects (None: every non-zero value)
    class_source: str = "values"                   # per class: "values" of the masks, or the images' "groups"
    class_values: tuple[tuple[int, ...], ...] | None = None   # per class: its mask values (None: i + 1)
    on_size: str = "resize"
    on_missing: str = "defect-free"
    loss: LossWeights = field(default_factory=LossWeights)
    postprocess: PostprocessSpec = field(default_factory=PostprocessSpec)
    where: str = "segmentation"                    # the recipe section, for messages

    @classmethod
    def from_recipe(cls, recipe) -> "SegmentationSpec":
        raw = dict(getattr(recipe, "segmentation", None) or {})
        where = f"{recipe.path}: segmentation"
        try:
            loss = LossWeights(**raw.pop("loss", {}))
            post = PostprocessSpec(**raw.pop("postprocess", {}))
            values = raw.pop("defect_values", None)
            classes = tuple(recipe.classes)
            per_class = raw.pop("class_values", None)
            spec = cls(classes=classes, defect_values=tuple(int(v) for v in values) if values else None,
                       class_values=_class_values(per_class, classes, where), loss=loss, postprocess=post,
                       where=where, **raw)
        except (TypeError, ValueError) as exc:
            raise EdgekitError(f"{where}: {exc}") from None
        if spec.class_source not in CLASS_SOURCES:
            raise EdgekitError(f"{where}: class_source must be one of {', '.join(CLASS_SOURCES)}")
        if spec.binary and (per_class or spec.class_source != "values"):
            raise EdgekitError(f"{where}: class_values and class_source are for several data.classes; a binary "
                               "recipe names its defects with defect_values")
        if not spec.binary and values:
            raise EdgekitError(f"{where}: defect_values is for a binary recipe (one data.classes entry); with "
                               f"{len(classes)} classes use class_values")
        _check_model(recipe, len(classes))
        if spec.on_size not in ON_SIZE or spec.on_missing not in ON_MISSING:
            raise EdgekitError(f"{where}: on_size must be one of {', '.join(ON_SIZE)} and on_missing one of "
                               f"{', '.join(ON_MISSING)}")
        if not post.valid:
            raise EdgekitError(f"{where}.postprocess: threshold in (0, 1), min_area >= 0, connectivity 4 or 8")
        return spec

    @property
    def binary(self) -> bool:
        return len(self.classes) == 1

    @property
    def channels(self) -> int:
        """The network's output maps: one logit when binary, else the background and each class."""
        return 1 if self.binary else len(self.classes) + 1

    def target(self, values: np.ndarray, group: str) -> np.ndarray:
        """A mask's class map (as read) of an image in ``group`` -> what the network learns: uint8, 0 background,
        1..K the recipe's classes (1 = defect when binary)."""
        if self.binary:
            return (np.isin(values, self.defect_values) if self.defect_values else values > 0).astype(np.uint8)
        if self.class_source == "groups":
            k = self.classes.index(group) + 1 if group in self.classes else 0
            return ((values > 0) * k).astype(np.uint8)
        out = np.zeros(values.shape, np.uint8)
        for k, vals in enumerate(self.class_values or [(i + 1,) for i in range(len(self.classes))], 1):
            out[np.isin(values, vals)] = k
        return out

    def check_groups(self, groups: tuple[str, ...]) -> None:
        """``class_source: groups`` needs each class to be a group of the data."""
        missing = [c for c in self.classes if c not in groups]
        if self.class_source == "groups" and missing:
            raise EdgekitError(f"{self.where}: data.classes {', '.join(map(repr, missing))} are not groups of the data "
                               f"(groups: {', '.join(groups)}), as segmentation.class_source: groups needs")


CLASS_SOURCES = ("values", "groups")


def _class_values(raw, classes: tuple[str, ...], where: str) -> tuple[tuple[int, ...], ...] | None:
    """``class_values: {name: [values]}`` -> the values per class in ``classes`` order."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != set(classes):
        raise EdgekitError(f"{where}: class_values must map each of data.classes ({', '.join(classes)}) to its "
                           "mask values")
    values = [tuple(int(v) for v in (raw[c] if isinstance(raw[c], list) else [raw[c]])) for c in classes]
    flat = [v for vs in values for v in vs]
    if len(flat) != len(set(flat)) or 0 in flat:
        raise EdgekitError(f"{where}: class_values gives a mask value to two classes, or to the background (0)")
    return tuple(values)


def _check_model(recipe, classes: int) -> None:
    """The model's ``num_classes`` must be the recipe's: the head's maps follow from it."""
    args = (getattr(recipe, "model", None) or {}).get("args", {}) or {}
    if args.get("num_classes", 1) != classes:
        raise EdgekitError(f"{recipe.path}: model.args.num_classes ({args.get('num_classes', 1)}) must equal the "
                           f"number of data.classes ({classes})")
