"""Detection figures: per-class AP and mAP@0.5 (VOC07 11-point and all-point), COCO mAP@[.5:.95].

The VOC forms follow the Pascal devkit: detections of a class across all images are ranked by
score, each greedily matched to the unmatched ground truth of highest IoU >= 0.5 in its image;
AP is the area under the precision envelope sampled at 11 recall points (VOC2007, the SSD
codebases' figure, which edgekit compares with the paper's 75.1) or at every recall step
(VOC2010+). As in the devkit, objects marked ``difficult`` count for no recall, and a detection
matched to one is neither a true nor a false positive. Boxes are continuous coordinates (VOC's
1-based inclusive pixels converted once, so a one-pixel box has width 1), as COCO has them.

The COCO figures come from pycocotools (the reference implementation): mAP@[.5:.95], AP@0.5 and
AP@0.75 with its 101-point interpolation, at most 100 detections per image. Difficult objects
go to it as ``iscrowd`` regions, its own way of ignoring ground truth: detections on them are
not counted (for a crowd region pycocotools measures overlap as intersection over the detection's area).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from edgekit.camera.post.detection import Detections
from edgekit.data.neu import Sample
from edgekit.tasks.detection.boxes import iou, voc_to_corners


@dataclass(frozen=True)
class GroundTruth:
    boxes: np.ndarray    # (n, 4) corner boxes, same units as the detections
    labels: np.ndarray   # (n,) 0-based class indices
    difficult: np.ndarray | None = None   # (n,) bool: VOC "difficult" objects (None: none)

    def __post_init__(self) -> None:
        if self.difficult is None:
            object.__setattr__(self, "difficult", np.zeros(len(self.labels), bool))

    @classmethod
    def from_sample(cls, sample: Sample, width: int, height: int) -> "GroundTruth":
        """A sample's VOC boxes as normalised corners (each box keeps its own annotated class)."""
        boxes = [(b.xmin, b.ymin, b.xmax, b.ymax) for b in sample.boxes]
        corners = np.clip(voc_to_corners(np.array(boxes, np.float64).reshape(-1, 4), width, height), 0.0, 1.0)
        return cls(corners, np.array([b.label for b in sample.boxes], np.int64),
                   np.array([b.difficult for b in sample.boxes], bool))

    @classmethod
    def for_images(cls, samples: list[Sample], images: list[np.ndarray]) -> list["GroundTruth"]:
        """Each sample's ground truth, normalised by the size of its image as read."""
        return [cls.from_sample(s, im.shape[1], im.shape[0]) for s, im in zip(samples, images)]


def average_precision(recall: np.ndarray, precision: np.ndarray, mode: str) -> float:
    """AP from a ranked list's recall / precision curve; ``mode`` is "voc07" or "all"."""
    if mode == "voc07":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    if mode != "all":
        raise ValueError(f"unknown AP mode {mode!r}")
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]          # precision envelope
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass(frozen=True)
class Matched:
    """One class's detections over the split, best score first, each matched as the devkit matches it; a
    detection's outcome depends on its own image only, so weighting images (a bootstrap resample) re-weights
    detections and ground truths without matching again."""
    score: np.ndarray       # (d,) each ranked detection's score
    image: np.ndarray       # (d,) its image index
    tp: np.ndarray          # (d,) 1 for a true positive
    fp: np.ndarray          # (d,) 1 for a false positive (a detection on a difficult object is neither)
    gt: np.ndarray          # (images,) non-difficult ground truths of the class per image

    def curve(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(recall, precision, ground truths) with each image counted ``weights[i]`` times (None: once)."""
        w = np.ones(len(self.gt)) if weights is None else np.asarray(weights, np.float64)
        per_det = w[self.image]
        ctp, cfp = np.cumsum(self.tp * per_det), np.cumsum(self.fp * per_det)
        n_gt = float(np.dot(self.gt, w))
        recall = ctp / max(n_gt, 1.0)
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        return recall, precision, n_gt


def match(gts: list[GroundTruth], dets: list[Detections], cls: int, iou_threshold: float = 0.5) -> Matched:
    """The devkit's matching of class ``cls``: each detection, best score first, takes the ground truth of its
    class with the highest IoU; at IoU >= ``iou_threshold`` it is a true positive if that object is not
    difficult and not yet taken, ignored if it is difficult, a false positive otherwise."""
    ranked = [(float(s), i, b) for i, d in enumerate(dets) for b, s, lab in zip(d.boxes, d.scores, d.labels)
              if lab == cls]
    ranked.sort(key=lambda t: -t[0])
    used = [np.zeros(int((g.labels == cls).sum()), bool) for g in gts]
    tp = np.zeros(len(ranked))
    fp = np.zeros(len(ranked))
    for j, (_, i, box) in enumerate(ranked):
        mine = gts[i].labels == cls
        truth = gts[i].boxes[mine]
        if len(truth) == 0:
            fp[j] = 1
            continue
        overlaps = iou(box[None].astype(np.float64), truth.astype(np.float64))[0]
        best = int(overlaps.argmax())
        if overlaps[best] < iou_threshold:
            fp[j] = 1
        elif gts[i].difficult[mine][best]:
            continue
        elif not used[i][best]:
            tp[j], used[i][best] = 1, True
        else:
            fp[j] = 1
    gt = np.array([int(((g.labels == cls) & ~g.difficult).sum()) for g in gts], np.float64)
    return Matched(np.array([s for s, _, _ in ranked], np.float64), np.array([i for _, i, _ in ranked], np.int64),
                   tp, fp, gt)


def per_image_hits(matched: list[Matched], images: int, min_score: float) -> np.ndarray:
    """Per image, true minus false positives among the detections scoring at least ``min_score`` (what the
    line reports): the answer whose change between two artifacts the gates count."""
    hits = np.zeros(images)
    for m in matched:
        keep = m.score >= min_score
        np.add.at(hits, m.image[keep], m.tp[keep] - m.fp[keep])
    return hits


def weighted_map(matched: list[Matched], weights: np.ndarray, mode: str = "voc07") -> float | None:
    """mAP@0.5 (%) with each image counted ``weights[i]`` times: a bootstrap resample's figure without matching
    again (None when no class has a ground truth among the weighted images)."""
    aps = []
    for m in matched:
        recall, precision, n_gt = m.curve(weights)
        if n_gt <= 0:
            continue
        aps.append(100.0 * average_precision(recall, precision, mode) if len(recall) else 0.0)
    return float(np.mean(aps)) if aps else None


def voc_map(gts: list[GroundTruth], dets: list[Detections], classes: tuple[str, ...],
            iou_threshold: float = 0.5) -> dict:
    """Per-class AP (%) and mAP (%) in both VOC forms; classes without ground truth are left out."""
    out: dict = {"voc07": {}, "all_point": {}, "gt_per_class": {}, "difficult_per_class": {}, "curves": {},
                 "matched": [match(gts, dets, k, iou_threshold) for k in range(len(classes))]}
    for k, name in enumerate(classes):
        recall, precision, n_gt = out["matched"][k].curve()
        n_gt = int(n_gt)
        out["gt_per_class"][name] = n_gt
        out["difficult_per_class"][name] = sum(int(((g.labels == k) & g.difficult).sum()) for g in gts)
        out["curves"][name] = (recall, precision)
        if n_gt == 0:
            continue
        out["voc07"][name] = 100.0 * average_precision(recall, precision, "voc07") if len(recall) else 0.0
        out["all_point"][name] = 100.0 * average_precision(recall, precision, "all") if len(recall) else 0.0
    for mode in ("voc07", "all_point"):
        values = list(out[mode].values())
        out[f"map_{mode}"] = float(np.mean(values)) if values else 0.0
    return out


def coco_map(gts: list[GroundTruth], dets: list[Detections], classes: tuple[str, ...],
             sizes: list[tuple[int, int]]) -> dict:
    """COCO mAP@[.5:.95], AP50, AP75 (%) and per-class mAP@[.5:.95] by pycocotools.

    Boxes are normalised corners; ``sizes`` gives each image's (width, height) in pixels.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for i, ((w, h), g, d) in enumerate(zip(sizes, gts, dets)):
        images.append({"id": i, "width": w, "height": h})
        scale = np.array([w, h, w, h], np.float64)
        for box, lab, hard in zip(g.boxes * scale, g.labels, g.difficult):
            bw, bh = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(lab),
                                "bbox": [float(box[0]), float(box[1]), float(bw), float(bh)],
                                "area": float(bw * bh), "iscrowd": int(hard)})
        for box, s, lab in zip(d.boxes * scale, d.scores, d.labels):
            results.append({"image_id": i, "category_id": int(lab), "score": float(s),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    empty = {"map": 0.0, "ap50": 0.0, "ap75": 0.0, "per_class": {}}
    if not annotations or not results:
        return empty
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools narrates every step on stdout
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": k, "name": c} for k, c in enumerate(classes)]}
        truth.createIndex()
        ev = COCOeval(truth, truth.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]   # (IoU, recall, class) at area "all", 100 dets
    per_class = {}
    for k, name in enumerate(classes):
        p = precision[:, :, k]
        if (p > -1).any():
            per_class[name] = 100.0 * float(p[p > -1].mean())
    return {"map": 100.0 * float(ev.stats[0]), "ap50": 100.0 * float(ev.stats[1]),
            "ap75": 100.0 * float(ev.stats[2]), "per_class": per_class}


def detection_metrics(gts: list[GroundTruth], dets: list[Detections], classes: tuple[str, ...],
                      sizes: list[tuple[int, int]]) -> dict:
    """Everything validate reports for a detector: VOC07 / all-point per class and mAP, COCO."""
    voc = voc_map(gts, dets, classes)
    return {"map_voc07": voc["map_voc07"], "map_all_point": voc["map_all_point"],
            "ap_voc07": voc["voc07"], "ap_all_point": voc["all_point"], "gt_per_class": voc["gt_per_class"],
            "difficult_per_class": voc["difficult_per_class"], "curves": voc["curves"], "matched": voc["matched"],
            "coco": coco_map(gts, dets, classes, sizes),
            "detections": int(sum(len(d) for d in dets))}
