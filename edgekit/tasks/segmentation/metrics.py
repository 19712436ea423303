"""Segmentation figures from one pixel confusion matrix over a split, in percent: pixel accuracy, and
for "defect" (every class against the background) Dice and IoU; the IoU of the background and of
each class, and their mean (LSA-Net's "IoU" when binary, see SEEDS.md; the usual mean IoU when per
class). Class maps hold 0 for background and 1..K for the classes (K = 1 when binary)."""
from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, truth: np.ndarray, classes: int = 1) -> np.ndarray:
    """(classes + 1) square pixel counts, rows true (background, class 1, ...), columns predicted."""
    n = classes + 1
    p = np.asarray(pred, np.int64).ravel()
    t = np.asarray(truth, np.int64).ravel()
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def _ratio(num: float, den: float) -> float | None:
    return 100.0 * num / den if den else None


def _iou(matrix: np.ndarray, k: int) -> float | None:
    tp = matrix[k, k]
    return _ratio(tp, matrix[k].sum() + matrix[:, k].sum() - tp)


def figures(matrix: np.ndarray, names: tuple[str, ...] = ()) -> dict:
    """PA, defect Dice and IoU, background IoU, mean IoU over the background and the classes (percent; None
    where undefined: a class in neither the truth nor the prediction); per class IoU and Dice when
    ``names`` lists more than one class."""
    m = np.asarray(matrix, np.int64)
    tn = m[0, 0]
    fp, fn = m[0, 1:].sum(), m[1:, 0].sum()
    tp = m[1:, 1:].sum()                      # defect found as defect, whatever its class
    ious = [_iou(m, k) for k in range(len(m))]
    known = [v for v in ious if v is not None]
    out = {"pixel_accuracy": _ratio(np.trace(m), m.sum()), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
           "defect_iou": _ratio(tp, tp + fp + fn), "background_iou": ious[0],
           "mean_iou": float(np.mean(known)) if known else None}
    if len(names) > 1:
        out["per_class"] = {name: {"iou": ious[k], "dice": _ratio(2 * m[k, k], m[k].sum() + m[:, k].sum()),
                                   "pixels": int(m[k].sum())} for k, name in enumerate(names, 1)}
    return out


def per_image_confusion(preds: list[np.ndarray], truths: list[np.ndarray], classes: int = 1) -> np.ndarray:
    """(images, classes + 1, classes + 1): each image's pixel confusion matrix."""
    n = classes + 1
    return np.array([confusion(p, t, classes) for p, t in zip(preds, truths)], np.int64).reshape(-1, n, n)


def split_figures(preds: list[np.ndarray], truths: list[np.ndarray], groups: list[int],
                  group_names: tuple[str, ...], classes: tuple[str, ...] = ("defect",),
                  per_image: np.ndarray | None = None) -> dict:
    """The figures over the whole split (one matrix), per group of the data (class folder, split);
    ``per_image`` (:func:`per_image_confusion` of the same answers) when the caller has it already."""
    if per_image is None:
        per_image = per_image_confusion(preds, truths, len(classes))
    n = len(classes) + 1
    total = per_image.sum(axis=0) if len(per_image) else np.zeros((n, n), np.int64)
    per_group = {}
    for k, name in enumerate(group_names):
        chosen = [m for m, g in zip(per_image, groups) if g == k]
        if chosen:
            per_group[name] = {"images": len(chosen), **figures(np.sum(chosen, axis=0))}
    return {**figures(total, classes), "confusion": total.tolist(), "per_group": per_group}


def trivial_figures(truths: list[np.ndarray], classes: tuple[str, ...] = ("defect",)) -> dict[str, dict]:
    """What answering all background, or all of the most common class, would score: the floor to clear."""
    n = len(classes) + 1
    counts = np.zeros(n, np.int64)
    for t in truths:
        counts += np.bincount(np.asarray(t, np.int64).ravel(), minlength=n)
    common = int(np.argmax(counts[1:])) + 1
    background, defect = np.zeros((n, n), np.int64), np.zeros((n, n), np.int64)
    background[:, 0] = counts
    defect[:, common] = counts
    return {"all background": figures(background), f"all {classes[common - 1]}": figures(defect)}
