"""Pictures every task's report draws with: a labelled grid of image tiles, written as PNG."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgekit.errors import EdgekitError

FONT = cv2.FONT_HERSHEY_SIMPLEX


def grid(tiles: list[list[np.ndarray]], headers: list[str], pad: int = 4, header_px: int = 18) -> np.ndarray:
    """Rows of equally sized BGR tiles under one header per column, on a dark background."""
    rows, cols = len(tiles), len(headers)
    h, w = tiles[0][0].shape[:2]
    out = np.full((header_px + rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 32, np.uint8)
    for j, text in enumerate(headers):
        cv2.putText(out, text[: w // 6], (pad + j * (w + pad), header_px - 5), FONT, 0.4, (230, 230, 230), 1,
                    cv2.LINE_AA)
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            y, x = header_px + pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = tile
    return out


def write_png(path: Path, picture: np.ndarray) -> str:
    """Encode and write ``picture``; returns the file's name (what a report links)."""
    ok, buf = cv2.imencode(".png", picture)
    if not ok:  # pragma: no cover
        raise EdgekitError(f"{path}: PNG encoding failed")
    Path(path).write_bytes(buf.tobytes())
    return Path(path).name
