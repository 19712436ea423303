"""Masks drawn over images: the truth as a white outline, a prediction as a red overlay."""
from __future__ import annotations

import cv2
import numpy as np

TRUTH = (255, 255, 255)
PREDICTED = (60, 60, 230)        # BGR red


def tile(image: np.ndarray, size: int, truth: np.ndarray | None = None, predicted: np.ndarray | None = None,
         alpha: float = 0.45) -> np.ndarray:
    """``image`` at the model's ``size`` (BGR), with a predicted mask blended in and the truth outlined."""
    grey = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if image.shape[:2] != (size, size) else image
    out = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if grey.ndim == 2 else grey.copy()
    if predicted is not None and predicted.any():
        colour = np.zeros_like(out)
        colour[:] = PREDICTED
        blend = cv2.addWeighted(out, 1 - alpha, colour, alpha, 0)
        out[predicted] = blend[predicted]
    if truth is not None and truth.any():
        contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, TRUTH, 1)
    return out
