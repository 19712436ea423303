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
    masks: list[np.ndarray]       # uint8 (size, size): 0 background, 1..K the recipe's classes (area_resize)
    groups: list[int]             # each image's group (the data's class folder, split, part)
    cut: int                      # masks whose grey levels had to be cut at 128


def read_masked(samples: list[Sample], groups: tuple[str, ...], size: int, spec: SegmentationSpec,
                desc: str, dilate: int = 1) -> MaskedImages:
    """``samples`` (labelled by index into the data's ``groups``) -> images and the recipe's class maps at the
    network's size (:func:`area_resize`, ``dilate`` for training targets only)."""
    spec.check_groups(groups)
    images, masks, cut = [], [], 0
    for s in bar(samples, desc):
        image = read_grey(s.path)
        values, was_cut = read_mask(s, image.shape[:2], spec.on_size, spec.on_missing)
        cut += was_cut
        mask = area_resize(spec.target(values, groups[s.label]), size, dilate)
        images.append(image)
        masks.append(mask)
    return MaskedImages(images, masks, [s.label for s in samples], cut)


def area_resize(mask: np.ndarray, size: int, dilate: int = 1) -> np.ndarray:
    """A class map (0 background, 1..K) -> (size, size) by area: each class's share of every network pixel
    (OpenCV's INTER_AREA on its indicator), a pixel given the class covering most of it when that share reaches
    half; a defect (connected component) that would vanish so, a crack one source pixel wide shrunk twofold or
    more, keeps the network pixels holding at least half its own largest share, so no defect is lost
    (benchmarks/results/mask-resize-mt-128.md). ``dilate`` > 1 first grows each class by a ``dilate`` x
    ``dilate`` square at the mask's own resolution (SegDec's label dilation)."""
    if dilate > 1:
        mask = cv2.dilate(mask, np.ones((dilate, dilate), np.uint8))      # grey dilation: the larger class wins
    if mask.shape == (size, size):
        return mask
    out = np.zeros((size, size), np.uint8)
    present = [int(k) for k in np.unique(mask) if k]
    if not present:
        return out
    shares = np.stack([_share(mask == k, size) for k in present])
    best = shares.argmax(0)
    marked = np.take_along_axis(shares, best[None], 0)[0] >= 0.5
    out[marked] = np.asarray(present, np.uint8)[best[marked]]
    for k in present:                                          # the defects the half-share rule would erase
        n, parts = cv2.connectedComponents((mask == k).astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        seen = np.unique(parts[cv2.resize(out, mask.shape[::-1], interpolation=cv2.INTER_NEAREST) == k])
        for j in sorted(set(range(1, n)) - set(seen.tolist())):
            share = _share(parts == j, size)
            out[(share >= share.max() / 2) & (share > 0) & (out == 0)] = k
    return out


def _share(indicator: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(indicator.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)


def bounding_rectangles(mask: np.ndarray) -> np.ndarray:
    """LAM's target: each defect component's axis-aligned bounding rectangle, filled (seeds/004, Fig. 5)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    out = np.zeros(mask.shape, np.float32)
    for x, y, w, h, _ in stats[1:n]:
        out[y : y + h, x : x + w] = 1.0
    return out
