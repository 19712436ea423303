"""Segmentation: mask logits -> the threshold -> connected components per class (OpenCV) -> defects with
class, area, box and mean score.

Binary networks give one logit map: a pixel is defect where sigmoid(logit) >= threshold, compared on the
logit itself. Per-class networks give the background's logit and one per class: a pixel is defect where
the defect probability 1 - softmax[background] reaches the threshold, which on the logits is
logsumexp(class logits) - background logit >= logit(threshold); its class is the arg-max of the class
logits."""
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np


class PostprocessSpec(NamedTuple):
    threshold: float = 0.5     # defect probability at which a pixel is defect
    min_area: int = 0          # components smaller than this (pixels at the model's resolution) dropped
    connectivity: int = 8

    @property
    def logit_threshold(self) -> float:
        """The threshold on the exported logits (sigmoid is monotonic: no sigmoid over the whole map)."""
        return math.log(self.threshold / (1.0 - self.threshold))

    @property
    def valid(self) -> bool:
        return 0 < self.threshold < 1 and self.min_area >= 0 and self.connectivity in (4, 8)


class Defect(NamedTuple):
    area: int                                  # pixels at the model's resolution
    box: Tuple[float, float, float, float]     # x0, y0, x1, y1 as fractions of the image (x1, y1 exclusive)
    score: float                               # mean probability of its class over the component
    label: int = 0                             # defect class (0: the one class of a binary model)

    def scaled(self, width: int, height: int) -> Tuple[int, int, int, int]:
        """The box in pixels of an image ``width`` x ``height``."""
        x0, y0, x1, y1 = self.box
        return (int(round(x0 * width)), int(round(y0 * height)), int(round(x1 * width)), int(round(y1 * height)))


class Segmentation(NamedTuple):
    classes: np.ndarray                        # uint8 (H, W): 0 background, 1..K class, small components removed
    defects: Tuple[Defect, ...]

    @property
    def mask(self) -> np.ndarray:
        """bool (H, W): any defect."""
        return self.classes > 0


def _class_map(logits: np.ndarray, spec: PostprocessSpec) -> Tuple[np.ndarray, np.ndarray]:
    """(C, H, W) logits -> the class map (0 background) and each pixel's probability of its class (or of
    defect, on background pixels; unused there)."""
    logits = logits.astype(np.float32)
    if len(logits) == 1:
        return (logits[0] >= spec.logit_threshold).astype(np.uint8), 1.0 / (1.0 + np.exp(-logits[0]))
    background, rest = logits[0], logits[1:]
    class_sum = np.logaddexp.reduce(rest, axis=0)                                # logsumexp of the class logits
    label = (rest.argmax(axis=0) + 1).astype(np.uint8)
    label[class_sum - background < spec.logit_threshold] = 0
    everything = np.logaddexp(class_sum, background)
    prob = np.exp(np.take_along_axis(rest, (label.astype(np.int64) - 1).clip(0)[None], 0)[0] - everything)
    return label, prob


def components(logits: np.ndarray, spec: PostprocessSpec) -> Segmentation:
    """One image's logits (C, H, W) -> its defects, largest first."""
    label, prob = _class_map(logits, spec)
    h, w = label.shape
    out, defects = np.zeros_like(label), []
    for k in np.flatnonzero(np.bincount(label.ravel())[1:]) + 1:    # the classes present (np.unique: numpy.ma)
        n, parts, stats, _ = cv2.connectedComponentsWithStats((label == k).astype(np.uint8),
                                                              connectivity=spec.connectivity)
        mean = np.bincount(parts.ravel(), weights=prob.ravel(), minlength=n) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
        keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= spec.min_area) + 1
        out[np.isin(parts, keep)] = k
        for j in keep:
            x, y, bw, bh, area = (int(v) for v in stats[j])
            defects.append(Defect(area, (x / w, y / h, (x + bw) / w, (y + bh) / h), float(mean[j]),
                                  0 if len(logits) == 1 else int(k) - 1))
    defects.sort(key=lambda d: -d.area)
    return Segmentation(out, tuple(defects))


def postprocess(logits: np.ndarray, spec: PostprocessSpec) -> List[Segmentation]:
    """A batch's mask logits (N, C, H, W) -> one :class:`Segmentation` per image."""
    return [components(np.asarray(item), spec) for item in logits]


def config(spec: PostprocessSpec, classes: Sequence[str] = ("defect",)) -> Dict[str, Any]:
    """``pipeline.json``'s entry (the three settings, and in words what they mean)."""
    components = "OpenCV, {}-connected".format(spec.connectivity)
    if len(classes) == 1:
        out = {"output": "mask logits (N, 1, H, W)", "defect_if": "sigmoid(logit) >= {}".format(spec.threshold)}
    else:
        out = {"output": "mask logits (N, {}, H, W): background, {}".format(len(classes) + 1, ", ".join(classes)),
               "defect_if": "1 - softmax(logits)[background] >= {}, i.e. logsumexp(class logits) - background "
                            "logit >= logit_threshold".format(spec.threshold),
               "class": "argmax over the class logits", "classes": list(classes)}
        components += ", per class"
    return dict(out, logit_threshold=spec.logit_threshold, components=components, **spec._asdict())


def read_spec(cfg: Dict[str, Any]) -> PostprocessSpec:
    return PostprocessSpec(float(cfg["threshold"]), int(cfg["min_area"]), int(cfg["connectivity"]))


def build(cfg: Dict[str, Any], folder: Path) -> Callable[[Sequence[np.ndarray]], List[Segmentation]]:
    spec = read_spec(cfg)
    return lambda outputs: postprocess(outputs[0], spec)


def defects(seg: Segmentation, classes: Sequence[str]) -> Dict[str, Any]:
    return {"defect_fraction": round(float(seg.mask.mean()), 5),
            "defects": [{"class": classes[d.label], "score": round(d.score, 4), "area_px": d.area,
                         "box": [round(v, 4) for v in d.box]} for d in seg.defects]}


def frame_summary(answer: Segmentation, classes: Sequence[str]) -> Tuple[float, str]:
    """The most confident defect's mean probability and class; 0 and "none" without one."""
    best = max(answer.defects, key=lambda d: d.score, default=None)
    return (0.0, "none") if best is None else (best.score, classes[best.label])


def record(answer: Segmentation, classes: Sequence[str], min_score: float) -> Dict[str, Any]:
    return defects(answer, classes)
