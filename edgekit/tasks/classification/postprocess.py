"""Classification's host side, the same after every backend and on the line: logits -> the class and
its softmax probability."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Prediction(NamedTuple):
    label: int      # 0-based class index
    score: float    # its softmax probability


def postprocess(logits: np.ndarray) -> list[Prediction]:
    """A batch's logits (N, K) -> one :class:`Prediction` per image."""
    z = logits.astype(np.float32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    prob = z / z.sum(axis=1, keepdims=True)
    labels = prob.argmax(axis=1)
    return [Prediction(int(k), float(p[k])) for k, p in zip(labels, prob)]
