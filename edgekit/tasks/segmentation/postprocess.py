"""Segmentation's host side, the same after every backend and on the line: mask logits -> the
recipe's threshold -> connected components (OpenCV) -> defects with area, box and mean score."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgekit.tasks.segmentation.spec import PostprocessSpec


@dataclass(frozen=True)
class Defect:
    area: int                                  # pixels at the model's resolution
    box: tuple[float, float, float, float]     # x0, y0, x1, y1 as fractions of the image (x1, y1 exclusive)
    score: float                               # mean defect probability over the component
    label: int = 0                             # defect class (0: the one class of a binary model)

    def scaled(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in pixels of an image ``width`` x ``height``."""
        x0, y0, x1, y1 = self.box
        return (int(round(x0 * width)), int(round(y0 * height)), int(round(x1 * width)), int(round(y1 * height)))


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray                           # bool (H, W) at the model's resolution, small components removed
    defects: tuple[Defect, ...]


def components(logits: np.ndarray, spec: PostprocessSpec) -> Segmentation:
    """One image's logits (H, W) -> its defects."""
    binary = (logits >= spec.logit_threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=spec.connectivity)
    h, w = binary.shape
    keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= spec.min_area) + 1
    if n <= 1:
        return Segmentation(binary.astype(bool), ())
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))
    mean = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=n) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    defects = []
    for k in keep:
        x, y, bw, bh, area = (int(v) for v in stats[k])
        defects.append(Defect(area, (x / w, y / h, (x + bw) / w, (y + bh) / h), float(mean[k])))
    mask = np.isin(labels, keep) if len(keep) < n - 1 else binary.astype(bool)
    defects.sort(key=lambda d: -d.area)
    return Segmentation(mask, tuple(defects))


def postprocess(logits: np.ndarray, spec: PostprocessSpec) -> list[Segmentation]:
    """A batch's mask logits (N, 1, H, W) -> one :class:`Segmentation` per image."""
    return [components(np.asarray(item[0]), spec) for item in logits]
