"""Classification: logits -> the class and its softmax probability."""
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np


class Prediction(NamedTuple):
    label: int      # 0-based class index
    score: float    # its softmax probability


def postprocess(logits: np.ndarray) -> List[Prediction]:
    """A batch's logits (N, K) -> one :class:`Prediction` per image."""
    z = np.asarray(logits, np.float32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    prob = z / z.sum(axis=1, keepdims=True)
    labels = prob.argmax(axis=1)
    return [Prediction(int(k), float(p[k])) for k, p in zip(labels, prob)]


def config() -> Dict[str, Any]:
    return {"argmax": "over logits' last axis", "score": "softmax probability of that class"}


def build(cfg: Dict[str, Any], folder: Path) -> Callable[[Sequence[np.ndarray]], List[Prediction]]:
    return lambda outputs: postprocess(outputs[0])


def frame_summary(answer: Prediction, classes: Sequence[str]) -> Tuple[float, str]:
    return answer.score, classes[answer.label]


def record(answer: Prediction, classes: Sequence[str], min_score: float) -> Dict[str, Any]:
    return {"class": classes[answer.label], "score": round(answer.score, 4)}
