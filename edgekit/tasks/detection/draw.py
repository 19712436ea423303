"""Detections drawn on images (tiles of the validation report's grid)."""
from __future__ import annotations

import cv2
import numpy as np

from edgekit.camera.post.detection import Detections
from edgekit.tasks.pictures import FONT

# One BGR colour per class (Okabe-Ito, distinguishable by colour-blind readers), cycling.
PALETTE = ((0, 159, 230), (233, 180, 86), (115, 158, 0), (66, 228, 240), (178, 114, 0), (0, 94, 213),
           (167, 121, 204))
TRUTH = (255, 255, 255)


def draw(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
         scores: np.ndarray | None = None, colour: tuple[int, int, int] | None = None) -> np.ndarray:
    """Boxes in pixels on a copy of a grey or BGR image (returned BGR); labels and scores written above."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    for i, (box, lab) in enumerate(zip(boxes, labels)):
        c = colour or PALETTE[int(lab) % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), c, 1, cv2.LINE_AA)
        text = classes[int(lab)][:10] + (f" {scores[i]:.2f}" if scores is not None else "")
        cv2.putText(out, text, (x0 + 2, max(9, y0 + 9)), FONT, 0.3, c, 1, cv2.LINE_AA)
    return out


def draw_detections(image: np.ndarray, dets: Detections, classes: tuple[str, ...], min_score: float) -> np.ndarray:
    keep = dets.scores >= min_score
    h, w = image.shape[:2]
    return draw(image, dets.scaled(w, h)[keep], dets.labels[keep], classes, dets.scores[keep])
