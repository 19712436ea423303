"""Copies of one picture under another name: the same image flipped or rotated by 180 degrees, as
public NEU-Seg holds for most of its images. A random split puts one copy in training and the other
in the test split, and the test figure then measures memory. Images are compared by a 16x16 grey
thumbnail (mean removed, unit norm): a correlation above ``similarity`` with another image, or with
its horizontal, vertical or 180-degree flip, puts both in one cluster, kept on one side of a split."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgekit.data.images import read_grey
from edgekit.progress import bar

THUMB = 16
CHUNK = 2048


def thumbnails(paths: list[Path]) -> np.ndarray:
    """(n, THUMB, THUMB) float32 grey thumbnails."""
    return np.stack([cv2.resize(read_grey(p), (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
                     for p in bar(paths, "looking for flipped copies")])


def _unit(t: np.ndarray) -> np.ndarray:
    """Each thumbnail flattened, mean removed, unit norm: their dot products are correlations."""
    flat = t.reshape(len(t), -1)
    flat = flat - flat.mean(1, keepdims=True)
    return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-6)


def clusters(paths: list[Path], similarity: float = 0.98) -> list[int]:
    """A cluster id per image; images that are copies of each other (up to flips) share one."""
    t = thumbnails(paths)
    base = _unit(t)
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for flipped in (None, t[:, :, ::-1], t[:, ::-1, :], t[:, ::-1, ::-1]):
        other = base if flipped is None else _unit(np.ascontiguousarray(flipped))
        for start in range(0, len(paths), CHUNK):
            corr = base[start : start + CHUNK] @ other.T
            rows, cols = np.nonzero(corr > similarity)
            for i, j in zip(rows + start, cols):
                if i != j:
                    parent[find(int(i))] = find(int(j))
    roots = [find(i) for i in range(len(paths))]
    ids = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return [ids[r] for r in roots]
