"""Segmentation figures in percent, in two readings. Over the split (one pixel confusion matrix): pixel
accuracy, and for "defect" (every class against the background) Dice and IoU; the IoU of the background and
of each class, and their mean. Per image (``*_per_image``): each image's mean IoU, defect IoU and Dice from
its own matrix, averaged over the images where they are defined (a class neither true nor predicted in an
image has no IoU there: a defect-free image answered defect-free scores its background IoU, 100). Soft Dice
(``dice_soft``) uses the defect probabilities instead of the thresholded masks.

Which reading a paper used is not always said: LSA-Net's Magnetic-Tile row (IoU 91.75, Dice 81.78) is
impossible for a hard Dice of the same reading (IoU at most (100 + Dice) / 2 = 90.9; SEEDS.md). Measured on
Magnetic-Tile, the soft Dice runs below the hard one and the per-image figures far below the split's (small
defects, poorly found, weigh as much as large ones): the pair fits the split's mean IoU with a soft Dice,
which the gates therefore read. Class maps hold 0 for background and 1..K for the classes (K = 1 when
binary)."""
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


PER_IMAGE = ("mean_iou", "defect_iou", "dice")


def image_figures(per_image: np.ndarray) -> dict[str, np.ndarray]:
    """Each image's mean IoU, defect IoU and Dice (percent, NaN where undefined in that image)."""
    out = {k: np.full(len(per_image), np.nan) for k in PER_IMAGE}
    for i, m in enumerate(per_image):
        f = figures(m)
        for k in PER_IMAGE:
            out[k][i] = np.nan if f[k] is None else f[k]
    return out


def mean_defined(values: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """The (weighted) mean over the images where a per-image figure is defined; None where none is."""
    w = np.ones(len(values)) if weights is None else np.asarray(weights, np.float64)
    ok = ~np.isnan(values) & (w > 0)
    return float(np.average(values[ok], weights=w[ok])) if ok.any() else None


def soft_dice(probs: list[np.ndarray], truths: list[np.ndarray]) -> float | None:
    """Dice of the defect probabilities against the defect masks over the split (no threshold), percent."""
    inter = sum(float((p * (t > 0)).sum()) for p, t in zip(probs, truths))
    total = sum(float(p.sum()) + float((t > 0).sum()) for p, t in zip(probs, truths))
    return _ratio(2 * inter, total)


def split_figures(preds: list[np.ndarray], truths: list[np.ndarray], groups: list[int],
                  group_names: tuple[str, ...], classes: tuple[str, ...] = ("defect",),
                  per_image: np.ndarray | None = None, probs: list[np.ndarray] | None = None) -> dict:
    """The figures over the whole split (one matrix) and per image, per group of the data (class folder,
    split); ``per_image`` (:func:`per_image_confusion` of the same answers) when the caller has it already;
    ``probs`` (each image's defect probability map) adds the soft Dice."""
    if per_image is None:
        per_image = per_image_confusion(preds, truths, len(classes))
    n = len(classes) + 1
    total = per_image.sum(axis=0) if len(per_image) else np.zeros((n, n), np.int64)
    per_group = {}
    for k, name in enumerate(group_names):
        chosen = [m for m, g in zip(per_image, groups) if g == k]
        if chosen:
            per_group[name] = {"images": len(chosen), **figures(np.sum(chosen, axis=0))}
    each = image_figures(per_image)
    return {**figures(total, classes), **{f"{k}_per_image": mean_defined(v) for k, v in each.items()},
            **({"dice_soft": soft_dice(probs, truths)} if probs is not None else {}),
            "confusion": total.tolist(), "per_group": per_group}


def trivial_figures(truths: list[np.ndarray], classes: tuple[str, ...] = ("defect",)) -> dict[str, dict]:
    """What answering all background, or all of the most common class, would score (both readings): the floor
    to clear."""
    n = len(classes) + 1
    counts = np.zeros(n, np.int64)
    for t in truths:
        counts += np.bincount(np.asarray(t, np.int64).ravel(), minlength=n)
    common = int(np.argmax(counts[1:])) + 1
    out = {}
    for name, value in (("all background", 0), (f"all {classes[common - 1]}", common)):
        preds = [np.full(np.shape(t), value, np.uint8) for t in truths]
        f = split_figures(preds, truths, [0] * len(truths), ("all",), classes)
        out[name] = {k: v for k, v in f.items() if k not in ("confusion", "per_group", "per_class")}
    return out
