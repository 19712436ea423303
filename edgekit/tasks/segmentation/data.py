"""Images and their target class maps at the network's resolution, read once per split."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgekit.data.images import read_grey
from edgekit.data.masks import read_mask
from edgekit.data.neu import Sample
from edgekit.progress import bar
from edgekit.tasks.segmentation.spec import SegmentationSpec


@dataclass
class MaskedImages:
    images: list[np.ndarray]      # uint8 grey as read (original sizes)
    masks: list[np.ndarray]       # uint8 (size, size): 0 background, 1..K the recipe's classes, nearest-resized
    groups: list[int]             # each image's group (the data's class folder, split, part)
    cut: int                      # masks whose grey levels had to be cut at 128


def read_masked(samples: list[Sample], groups: tuple[str, ...], size: int, spec: SegmentationSpec,
                desc: str) -> MaskedImages:
    """``samples`` (labelled by index into the data's ``groups``) -> images and the recipe's class maps."""
    spec.check_groups(groups)
    images, masks, cut = [], [], 0
    for s in bar(samples, desc):
        image = read_grey(s.path)
        values, was_cut = read_mask(s, image.shape[:2], spec.on_size, spec.on_missing)
        cut += was_cut
        mask = spec.target(values, groups[s.label])
        if mask.shape != (size, size):
            mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
        images.append(image)
        masks.append(mask)
    return MaskedImages(images, masks, [s.label for s in samples], cut)


def bounding_rectangles(mask: np.ndarray) -> np.ndarray:
    """LAM's target: each defect component's axis-aligned bounding rectangle, filled (seeds/004, Fig. 5)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    out = np.zeros(mask.shape, np.float32)
    for x, y, w, h, _ in stats[1:n]:
        out[y : y + h, x : x + w] = 1.0
    return out
