"""Segmentation+decision's host side, the same after every backend and on the line: the decision logit
-> the defect probability and the recipe's decision; the segmentation map -> defect components (the
segmentation task's post-processing, binary, at the map's 1/8 resolution)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgekit.tasks.segmentation.postprocess import Segmentation, components
from edgekit.tasks.segmentation.spec import PostprocessSpec


class Decided(NamedTuple):
    score: float                 # probability that the image holds a defect
    defective: bool              # score >= the recipe's decision threshold
    segmentation: Segmentation   # where: components of the map (boxes as fractions of the image)


def postprocess(mask: np.ndarray, decision: np.ndarray, threshold: float, spec: PostprocessSpec) -> list[Decided]:
    """A batch's map logits (N, 1, h, w) and decision logits (N, 1) -> one :class:`Decided` per image."""
    scores = 1.0 / (1.0 + np.exp(-np.asarray(decision, np.float64).reshape(len(decision), -1)[:, 0]))
    return [Decided(float(s), bool(s >= threshold), components(np.asarray(m), spec)) for s, m in zip(scores, mask)]
