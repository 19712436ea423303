"""Detection: the SSD heads' raw outputs -> boxes, scores and classes, on the host after every backend.

Where NMS lives: here, for every backend. The exported graph ends at the SSD heads (``loc``, ``conf``);
softmax, box decoding and NMS run in numpy + OpenCV. TensorRT's NMS plugins (``BatchedNMS``/``EfficientNMS``)
are deprecated and gone in TensorRT 11, the ``INMSLayer`` / ONNX ``NonMaxSuppression`` import needs
TensorRT >= 8.5 (the Nano has 8.2), and each runtime's NMS differs in tie-breaking and thresholds: one host
implementation gives identical detections from TensorRT, OpenVINO, ONNX Runtime and PyTorch.

Semantics (those of OpenCV's ``dnn.NMSBoxesBatched``, built here on ``dnn.NMSBoxes``, which every OpenCV a
JetPack ships has: 4.1 on JetPack 4.6): per class, candidates with score > ``score_threshold``, at most
``pre_nms_top_k`` of them by score; a box is suppressed when its IoU with a kept box of the same class is
> ``iou_threshold``; equal scores keep prior order. Then at most ``top_k`` per image, by score.
"""
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np

from edgekit.errors import EdgekitError

VARIANCES = (0.1, 0.2)   # SSD's centre / size variances


class PostprocessConfig(NamedTuple):
    score_threshold: float = 0.01
    iou_threshold: float = 0.45
    top_k: int = 100          # detections kept per image
    pre_nms_top_k: int = 200  # candidates per class entering NMS

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "PostprocessConfig":
        unknown = set(cfg) - set(cls._fields)
        if unknown:
            raise ValueError("unknown post-processing option(s): {}".format(", ".join(sorted(unknown))))
        return cls(**cfg)


class Detections:
    """One image's detections: corner boxes normalised to [0, 1], scores, 0-based class indices."""
    __slots__ = ("boxes", "scores", "labels")

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> None:
        self.boxes, self.scores, self.labels = boxes, scores, labels    # (n, 4) float32, (n,) float32, (n,) int64

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, width: int, height: int) -> np.ndarray:
        """Boxes in pixels of a ``width`` x ``height`` image."""
        return self.boxes * np.array([width, height, width, height], np.float32)


def decode(loc: np.ndarray, priors: np.ndarray, variances: Tuple[float, float] = VARIANCES) -> np.ndarray:
    """SSD offsets (..., P, 4) against priors (cx, cy, w, h) -> corner boxes (..., P, 4)."""
    centre = priors[:, :2] + loc[..., :2] * variances[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[..., 2:] * variances[1])
    return np.concatenate([centre - size / 2, centre + size / 2], -1).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes (scores > 0) kept by class-wise NMS, in descending score order: OpenCV's batched NMS (each class's boxes
    moved apart by ``class * (largest coordinate + 1)``, then ``dnn.NMSBoxes``)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64)
    offset = labels.astype(np.float64) * (max(float(boxes.max()), 0.0) + 1.0)
    xywh = np.concatenate([boxes[:, :2] + offset[:, None], boxes[:, 2:] - boxes[:, :2]], 1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float32).tolist(), 0.0, float(iou_threshold))
    return np.asarray(keep, np.int64).reshape(-1)


def top_candidates(scores: np.ndarray, threshold: float, k: int) -> np.ndarray:
    """Indices with score > ``threshold``; when more than ``k``, the ``k`` best in descending score
    (equal scores in index order), found by a partition rather than a full sort."""
    cand = np.flatnonzero(scores > threshold)
    if len(cand) <= k:
        return cand
    s = scores[cand]
    kth = np.partition(s, len(s) - k)[len(s) - k]          # the k-th largest score
    above = cand[s > kth]
    cand = np.concatenate([above, cand[s == kth][: k - len(above)]])
    return cand[np.argsort(-scores[cand], kind="stable")]


def postprocess(loc: np.ndarray, conf: np.ndarray, priors: np.ndarray, cfg: PostprocessConfig,
                variances: Tuple[float, float] = VARIANCES) -> List[Detections]:
    """Raw heads of a batch, loc (N, P, 4) and conf (N, P, K+1) logits -> detections per image."""
    out = []
    boxes_all = np.clip(decode(np.asarray(loc, np.float32), priors, variances), 0.0, 1.0)
    probs_all = softmax(np.asarray(conf, np.float32))[..., 1:]             # drop background
    for boxes, probs in zip(boxes_all, probs_all):
        idx, cls = [], []
        for k in range(probs.shape[1]):
            cand = top_candidates(probs[:, k], cfg.score_threshold, cfg.pre_nms_top_k)
            idx.append(cand)
            cls.append(np.full(len(cand), k, np.int64))
        idx_a, cls_a = np.concatenate(idx), np.concatenate(cls)
        b, s = boxes[idx_a], probs[idx_a, cls_a]
        keep = nms(b, s, cls_a, cfg.iou_threshold)[: cfg.top_k]
        out.append(Detections(b[keep], s[keep].astype(np.float32), cls_a[keep]))
    return out


PRIORS_FILE = "priors.npy"


def config(cfg: PostprocessConfig, priors: Dict[str, Any]) -> Dict[str, Any]:
    """``pipeline.json``'s entry: ``priors`` describes the prior boxes written beside it (``PRIORS_FILE``)."""
    return {"priors": dict(priors, file=PRIORS_FILE, format="cx, cy, w, h (0..1)"),
            "box_coding": {"variances": list(VARIANCES), "decoded": "x0, y0, x1, y1 (0..1)"},
            "softmax": "over conf's last axis; index 0 is background",
            "nms": dict(cfg._asdict(), implementation="OpenCV dnn.NMSBoxes, per class")}


def build(cfg: Dict[str, Any], folder: Path) -> Callable[[Sequence[np.ndarray]], List[Detections]]:
    path = Path(folder) / cfg["priors"]["file"]
    priors = np.load(str(path), allow_pickle=False).astype(np.float32)
    if priors.ndim != 2 or priors.shape[1] != 4 or len(priors) != cfg["priors"]["count"]:
        raise EdgekitError("{}: {} prior boxes, the pipeline says {}".format(path, priors.shape, cfg["priors"]["count"]))
    nms_cfg = PostprocessConfig.from_config({k: v for k, v in cfg["nms"].items() if k != "implementation"})
    variances = tuple(float(v) for v in cfg["box_coding"]["variances"])
    return lambda outputs: postprocess(outputs[0], outputs[1], priors, nms_cfg, variances)


def frame_summary(answer: Detections, classes: Sequence[str]) -> Tuple[float, str]:
    """The best detection's score and class; 0 and "none" without a detection."""
    if not len(answer):
        return 0.0, "none"
    best = int(answer.scores.argmax())
    return float(answer.scores[best]), classes[int(answer.labels[best])]


def record(answer: Detections, classes: Sequence[str], min_score: float) -> Dict[str, Any]:
    keep = answer.scores >= min_score
    return {"defects": [{"class": classes[int(k)], "score": round(float(s), 4),
                         "box": [round(float(v), 4) for v in box]}
                        for box, s, k in zip(answer.boxes[keep], answer.scores[keep], answer.labels[keep])]}
