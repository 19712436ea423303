"""Detector post-processing on the host, the same after every backend.

Where NMS lives: in shared host code, for every backend. The exported graph ends at the SSD heads
(``loc``, ``conf``); softmax, box decoding and NMS run here in numpy + OpenCV. Reasons: TensorRT's
NMS plugins (``BatchedNMS``/``EfficientNMS``) are deprecated and gone in TensorRT 11, the built-in
``INMSLayer`` / ONNX ``NonMaxSuppression`` import needs TensorRT >= 8.5 (the Nano has 8.2), and
each runtime's NMS differs in tie-breaking and thresholds. One host implementation gives
identical detections from TensorRT, OpenVINO, ONNX Runtime and PyTorch, and costs about 2 ms
for raf-ssd's 3456 priors on this 2-core CPU at the mAP-evaluation thresholds (score 0.01, 200
candidates per class; most of it OpenCV's NMS over ~1000 boxes), less at line-side thresholds.

Semantics (OpenCV ``dnn.NMSBoxesBatched``): per class, candidates with score > ``score_threshold``,
at most ``pre_nms_top_k`` of them by score; a box is suppressed when its IoU with a kept box of
the same class is > ``iou_threshold``; equal scores keep prior order. Then at most ``top_k`` per
image, by score.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgekit.tasks.detection.boxes import decode


@dataclass(frozen=True)
class PostprocessConfig:
    score_threshold: float = 0.01
    iou_threshold: float = 0.45
    top_k: int = 100          # detections kept per image
    pre_nms_top_k: int = 200  # candidates per class entering NMS

    @classmethod
    def from_config(cls, cfg: dict) -> "PostprocessConfig":
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown post-processing option(s): {', '.join(sorted(unknown))}")
        return cls(**cfg)


@dataclass(frozen=True)
class Detections:
    """One image's detections: corner boxes normalised to [0, 1], scores, 0-based class indices."""
    boxes: np.ndarray    # (n, 4) float32
    scores: np.ndarray   # (n,) float32
    labels: np.ndarray   # (n,) int64

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, width: int, height: int) -> np.ndarray:
        """Boxes in pixels of a ``width`` x ``height`` image."""
        return self.boxes * np.array([width, height, width, height], np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by class-wise NMS (OpenCV), in descending score order."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64)
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), labels.astype(np.int32), -1.0,
                                   float(iou_threshold))
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


def postprocess(loc: np.ndarray, conf: np.ndarray, priors: np.ndarray, cfg: PostprocessConfig) -> list[Detections]:
    """Raw heads of a batch, loc (N, P, 4) and conf (N, P, K+1) logits -> detections per image."""
    out = []
    boxes_all = np.clip(decode(loc, priors), 0.0, 1.0)
    probs_all = softmax(conf.astype(np.float32))[..., 1:]             # drop background
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
