"""Masks drawn over images: the truth outlined, a prediction blended in; one colour when binary
(white outline, red fill), a colour per class otherwise (:data:`PALETTE`, named in the report)."""
from __future__ import annotations

import cv2
import numpy as np

TRUTH = (255, 255, 255)
PREDICTED = (60, 60, 230)        # BGR red
PALETTE = (("red", (60, 60, 230)), ("green", (60, 200, 60)), ("blue", (230, 120, 40)), ("yellow", (40, 220, 230)),
           ("magenta", (220, 60, 220)), ("cyan", (230, 220, 40)), ("orange", (40, 140, 250)), ("grey", (160, 160, 160)))


def colour(k: int, per_class: bool) -> tuple[int, int, int]:
    """Class ``k``'s colour (1-based); a binary prediction's red."""
    return PALETTE[(k - 1) % len(PALETTE)][1] if per_class else PREDICTED


def tile(image: np.ndarray, size: int, truth: np.ndarray | None = None, predicted: np.ndarray | None = None,
         per_class: bool = False, alpha: float = 0.45) -> np.ndarray:
    """``image`` at the model's ``size`` (BGR), a predicted class map blended in and the truth's outlined
    (class maps: 0 background, 1..K; a bool mask is one class)."""
    grey = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if image.shape[:2] != (size, size) else image
    out = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if grey.ndim == 2 else grey.copy()
    if predicted is not None and predicted.any():
        fill = np.zeros_like(out)
        for k in np.unique(predicted[predicted > 0]):
            fill[predicted == k] = colour(int(k), per_class)
        blend = cv2.addWeighted(out, 1 - alpha, fill, alpha, 0)
        out[predicted > 0] = blend[predicted > 0]
    if truth is not None and truth.any():
        for k in np.unique(truth[truth > 0]):
            contours, _ = cv2.findContours((truth == k).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, colour(int(k), per_class) if per_class else TRUTH, 1)
    return out
