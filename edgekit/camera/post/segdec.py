"""Segmentation + decision: the decision logit -> the defect probability and the recipe's decision; the
segmentation map -> defect components (the segmentation task's post-processing, binary, at the map's 1/8
resolution)."""
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

from edgekit.camera.post.segmentation import (
    PostprocessSpec,
    Segmentation,
    components,
    defects,
    read_spec,
)
from edgekit.camera.post.segmentation import config as mask_config


class Decided(NamedTuple):
    score: float                 # probability that the image holds a defect
    defective: bool              # score >= the recipe's decision threshold
    segmentation: Segmentation   # where: components of the map (boxes as fractions of the image)


def postprocess(mask: np.ndarray, decision: np.ndarray, threshold: float, spec: PostprocessSpec) -> List[Decided]:
    """A batch's map logits (N, 1, h, w) and decision logits (N, 1) -> one :class:`Decided` per image."""
    scores = 1.0 / (1.0 + np.exp(-np.asarray(decision, np.float64).reshape(len(decision), -1)[:, 0]))
    return [Decided(float(s), bool(s >= threshold), components(np.asarray(m), spec)) for s, m in zip(scores, mask)]


def config(threshold: float, spec: PostprocessSpec) -> Dict[str, Any]:
    return {"decision": {"output": "decision logit (N, 1)", "threshold": threshold,
                         "defective_if": "sigmoid(logit) >= {}".format(threshold)},
            "mask": dict(mask_config(spec), output="mask logits (N, 1, H/8, W/8)")}


def build(cfg: Dict[str, Any], folder: Path) -> Callable[[Sequence[np.ndarray]], List[Decided]]:
    threshold, spec = float(cfg["decision"]["threshold"]), read_spec(cfg["mask"])
    return lambda outputs: postprocess(outputs[0], outputs[1], threshold, spec)


def frame_summary(answer: Decided, classes: Sequence[str]) -> Tuple[float, str]:
    return answer.score, "defective" if answer.defective else "good"


def record(answer: Decided, classes: Sequence[str], min_score: float) -> Dict[str, Any]:
    return dict({"defective": answer.defective, "score": round(answer.score, 4)},
                **defects(answer.segmentation, classes))
