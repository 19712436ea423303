"""A frame with its line answer drawn on it (boxes and classes, or the class of the whole image)."""
from pathlib import Path

import cv2
import numpy as np


def draw(image: np.ndarray, record: dict, path: Path) -> None:
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    h, w = out.shape[:2]
    for d in record.get("defects", []):
        x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(d["box"], (w, h, w, h)))
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 255), 1)
        cv2.putText(out, f"{d['class']} {d['score']:.2f}", (x0, max(y0 - 3, 9)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 255), 1, cv2.LINE_AA)
    if "class" in record:
        cv2.putText(out, f"{record['class']} {record['score']:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), out)
