"""Box geometry in numpy: conversions, IoU, SSD offset coding and prior matching.

Coordinates are normalised to the image ([0, 1]); corner boxes are (x0, y0, x1, y1) with
x1 > x0. A VOC box (1-based inclusive pixels) covers [xmin - 1, xmax] in continuous pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.camera.post.detection import VARIANCES


def voc_to_corners(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """VOC (xmin, ymin, xmax, ymax) 1-based inclusive pixels -> normalised corners."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], np.float64)
    return ((b - np.array([1.0, 1.0, 0.0, 0.0])) / scale).astype(np.float32)


def centre_to_corners(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def corners_to_centre(b: np.ndarray) -> np.ndarray:
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], -1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of corner boxes: (A, 4) x (B, 4) -> (A, B)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area_a = np.prod(a[:, 2:] - a[:, :2], -1)
    area_b = np.prod(b[:, 2:] - b[:, :2], -1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def encode(corners: np.ndarray, priors: np.ndarray, variances: tuple[float, float] = VARIANCES) -> np.ndarray:
    """Corner boxes matched to ``priors`` (cx, cy, w, h) -> SSD regression targets (P, 4)."""
    c = corners_to_centre(corners)
    centre = (c[:, :2] - priors[:, :2]) / (variances[0] * priors[:, 2:])
    size = np.log(np.maximum(c[:, 2:], 1e-6) / priors[:, 2:]) / variances[1]
    return np.concatenate([centre, size], 1).astype(np.float32)



@dataclass(frozen=True)
class Targets:
    loc: np.ndarray      # (P, 4) float32 regression targets (meaningful where labels > 0)
    labels: np.ndarray   # (P,) int64: 0 background, k + 1 for class k


def match(gt: np.ndarray, gt_labels: np.ndarray, priors: np.ndarray, threshold: float = 0.5) -> Targets:
    """SSD matching (seeds/000 3.1): each ground truth first takes its best-IoU prior, then every
    prior takes the ground truth it overlaps best if that IoU reaches ``threshold``."""
    n = len(priors)
    if len(gt) == 0:
        return Targets(np.zeros((n, 4), np.float32), np.zeros(n, np.int64))
    overlaps = iou(gt, centre_to_corners(priors))           # (G, P)
    best_gt = overlaps.argmax(0)                             # per prior
    best_gt_iou = overlaps.max(0)
    best_prior = overlaps.argmax(1)                          # per ground truth
    # Forced matches win, and a later ground truth wins a prior two of them chose (as SSD does).
    best_gt_iou[best_prior] = 2.0
    best_gt[best_prior] = np.arange(len(gt))
    labels = np.asarray(gt_labels, np.int64)[best_gt] + 1
    labels[best_gt_iou < threshold] = 0
    return Targets(encode(gt[best_gt], priors), labels)
