"""Image-level figures of a defect decision, from scikit-learn's metrics: AUC, AP, the F-measure at the
best threshold (FP and FN there: the paper's) and at the recipe's (FP and FN there: the line's), in percent
for AUC, AP and F."""
from __future__ import annotations

import numpy as np
from edgekit.stats import Answers
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, precision_recall_curve, roc_auc_score


def decision_figures(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    both = len(set(labels.tolist())) == 2
    precision, recall, thresholds = precision_recall_curve(labels, scores) if both else ([0.0], [0.0], [])
    f = 2 * np.asarray(precision) * np.asarray(recall) / np.maximum(np.asarray(precision) + np.asarray(recall), 1e-12)
    best = int(np.argmax(f[:-1])) if len(thresholds) else 0
    decided = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, decided, labels=[0, 1]).ravel()
    at_best = (scores >= thresholds[best]).astype(int) if len(thresholds) else decided
    _, fp_best, fn_best, _ = confusion_matrix(labels, at_best, labels=[0, 1]).ravel()
    return {
        "ap": 100.0 * float(average_precision_score(labels, scores)) if both else None,
        "auc": 100.0 * float(roc_auc_score(labels, scores)) if both else None,
        "f_best": 100.0 * float(f[best]) if len(thresholds) else None,
        "best_threshold": float(thresholds[best]) if len(thresholds) else None,
        "f_at_threshold": 100.0 * float(f1_score(labels, decided, zero_division=0.0)),
        "fp_best": int(fp_best), "fn_best": int(fn_best),
        "threshold": threshold, "fp": int(fp), "fn": int(fn), "tp": int(tp), "tn": int(tn),
        "positives": int(labels.sum()), "images": int(len(labels)),
    }


def decision_answers(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Answers:
    """The gates' view of a decision: per image right or wrong at ``threshold``; AP (%) with the images weighted
    (None when the weighted images hold one class only)."""
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    right = ((scores >= threshold).astype(int) == labels).astype(np.float64)

    def ap(w: np.ndarray) -> float | None:
        present = w > 0
        if len(set(labels[present].tolist())) < 2:
            return None
        return 100.0 * float(average_precision_score(labels[present], scores[present], sample_weight=w[present]))

    return Answers(right, ap)
