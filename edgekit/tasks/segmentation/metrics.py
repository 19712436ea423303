"""Segmentation figures from one pixel confusion matrix over a split: pixel accuracy, Dice, defect
IoU, background IoU and their mean (LSA-Net's "IoU", see SEEDS.md), in percent."""
from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """2x2 pixel counts, rows true (background, defect), columns predicted."""
    p, t = np.asarray(pred, bool).ravel(), np.asarray(truth, bool).ravel()
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return np.array([[p.size - tp - fp - fn, fp], [fn, tp]], np.int64)


def _ratio(num: float, den: float) -> float | None:
    return 100.0 * num / den if den else None


def figures(matrix: np.ndarray) -> dict[str, float | None]:
    """PA, Dice, defect IoU, background IoU, mean IoU (percent; None where undefined: no defect pixel
    in the truth nor the prediction)."""
    (tn, fp), (fn, tp) = np.asarray(matrix, np.int64)
    total = tn + fp + fn + tp
    defect = _ratio(tp, tp + fp + fn)
    background = _ratio(tn, tn + fp + fn)
    ious = [v for v in (background, defect) if v is not None]
    return {"pixel_accuracy": _ratio(tn + tp, total), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "defect_iou": defect, "background_iou": background,
            "mean_iou": float(np.mean(ious)) if ious else None}


def split_figures(preds: list[np.ndarray], truths: list[np.ndarray], groups: list[int],
                  group_names: tuple[str, ...]) -> dict:
    """The figures over the whole split (one matrix), per group of the data (class folder, split),
    and the trivial answers' figures for scale (all background, all defect)."""
    per_image = [confusion(p, t) for p, t in zip(preds, truths)]
    total = np.sum(per_image, axis=0) if per_image else np.zeros((2, 2), np.int64)
    per_group = {}
    for k, name in enumerate(group_names):
        chosen = [m for m, g in zip(per_image, groups) if g == k]
        if chosen:
            per_group[name] = {"images": len(chosen), **figures(np.sum(chosen, axis=0))}
    return {**figures(total), "confusion": total.tolist(), "per_group": per_group}


def trivial_figures(truths: list[np.ndarray]) -> dict[str, dict]:
    """What answering all background, or all defect, would score: the floor a model must clear."""
    defect = sum(int(np.count_nonzero(t)) for t in truths)
    pixels = sum(int(t.size) for t in truths)
    return {"all background": figures(np.array([[pixels - defect, 0], [defect, 0]])),
            "all defect": figures(np.array([[0, pixels - defect], [0, defect]]))}
