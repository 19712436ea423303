"""Classification's host side: logits -> class, and the figures validation reports."""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    m = confusion(np.asarray(y_true), np.asarray(y_pred), len(classes))
    tp = np.diag(m).astype(float)
    recall = np.divide(tp, m.sum(1), out=np.zeros_like(tp), where=m.sum(1) > 0)
    precision = np.divide(tp, m.sum(0), out=np.zeros_like(tp), where=m.sum(0) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    return {
        "accuracy": float(100.0 * tp.sum() / max(1, m.sum())),
        "per_class": {
            c: {"recall": float(100 * recall[i]), "precision": float(100 * precision[i]), "f1": float(100 * f1[i]),
                "support": int(m[i].sum())}
            for i, c in enumerate(classes)
        },
        "confusion": m.tolist(),
    }
