"""Detection building blocks: priors, box coding, matching, loss, NMS, mAP definitions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from edgekit.camera.post.detection import Detections, PostprocessConfig, decode, nms, postprocess, top_candidates
from edgekit.errors import EdgekitError
from edgekit.models import create_model, model_meta
from edgekit.recipes import load_recipe
from edgekit.tasks.detection.boxes import centre_to_corners, encode, iou, match, voc_to_corners
from edgekit.tasks.detection.loss import multibox_loss
from edgekit.tasks.detection.metrics import GroundTruth, average_precision, coco_map, voc_map
from edgekit.tasks.detection.priors import PriorSpec, make_priors, scales
from edgekit.tasks.detection.spec import DetectionSpec

PAPER = PriorSpec(0.3, 1.0, (1.0, 2.0, 0.5, 1 / 3))


# --------------------------------------------------------------------------- priors
def test_prior_scales_follow_the_papers_formula() -> None:
    # first map s_min / 2, then s_p = s_min + (s_max - s_min)(p - 1)/(m - 1) over the other five maps
    assert scales(6, PAPER) == pytest.approx([0.15, 0.3, 0.475, 0.65, 0.825, 1.0])


def test_prior_count_and_geometry_per_map() -> None:
    sizes = [25, 13, 7, 4, 2, 1]
    priors = make_priors(sizes, PriorSpec(**{**PAPER.__dict__, "clip": False}))
    assert priors.shape == (4 * sum(s * s for s in sizes), 4) == (3456, 4)
    start = 0
    for size, s in zip(sizes, scales(6, PAPER)):
        block = priors[start : start + 4 * size * size].reshape(size, size, 4, 4)
        start += 4 * size * size
        centres = (np.arange(size) + 0.5) / size
        assert np.allclose(block[0, :, 0, 0], centres) and np.allclose(block[:, 0, 0, 1], centres)  # cx by column
        w, h = block[0, 0, :, 2], block[0, 0, :, 3]
        assert np.allclose(w * h, s * s)                           # every aspect ratio keeps the area s^2
        assert np.allclose(w / h, [1, 2, 0.5, 1 / 3], rtol=1e-5)   # in the recipe's order
    clipped = make_priors(sizes, PAPER)
    assert clipped.min() >= 0 and clipped.max() <= 1


@pytest.mark.parametrize("size", [64, 200, 256, 300])
def test_model_outputs_one_row_per_prior(size: int) -> None:
    model = create_model("raf_ssd_resnet50", num_classes=6, image_size=size).eval()
    with torch.inference_mode():
        loc, conf = model(torch.zeros(1, 3, size, size))
    n = len(make_priors(model_meta("raf_ssd_resnet50")["map_sizes"](size), PAPER))
    assert loc.shape == (1, n, 4) and conf.shape == (1, n, 7)


def test_baseline_ssd_has_no_fusion_or_attention() -> None:
    raf, ssd = create_model("raf_ssd_resnet50"), create_model("ssd_resnet50")
    assert len(raf.fusions) == 2 and len(ssd.fusions) == 0
    assert not any(isinstance(m, torch.nn.Sigmoid) or m.__class__.__name__ == "SqueezeExcite" for m in ssd.modules())
    assert sum(m.__class__.__name__ == "SqueezeExcite" for m in raf.modules()) == 6
    # the paper's 4x4 / stride 2 / padding 1 transposed convs: x4 for Conv3_x + Conv8_2, x8 (crop) for Conv7 + Conv10_2
    ups = [[m for m in f.up if isinstance(m, torch.nn.ConvTranspose2d)] for f in raf.fusions.values()]
    assert [len(u) for u in ups] == [2, 3]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for u in ups for m in u)


def test_recipe_spec_is_checked_against_the_model(tmp_path) -> None:
    spec = DetectionSpec.from_recipe(load_recipe("raf-ssd"))
    assert spec.map_sizes == (25, 13, 7, 4, 2, 1) and len(spec.prior_boxes) == 3456
    import yaml

    raw = yaml.safe_load(load_recipe("raf-ssd").path.read_text())
    raw["detection"]["priors"]["aspect_ratios"] = [1, 2]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(EdgekitError, match=r"bad\.yaml: model.args.boxes_per_cell \(4\) must equal"):
        DetectionSpec.from_recipe(load_recipe(tmp_path / "bad.yaml"))


# --------------------------------------------------------------------------- boxes
def test_voc_boxes_become_continuous_normalised_corners() -> None:
    # VOC 1-based inclusive (1, 1, 200, 100) covers the whole width and the top half of a 200 x 200 image
    assert np.allclose(voc_to_corners(np.array([[1, 1, 200, 100]]), 200, 200), [[0, 0, 1, 0.5]])


def test_encode_decode_round_trip() -> None:
    rng = np.random.default_rng(0)
    priors = make_priors([5, 3], PAPER)
    xy = rng.uniform(0, 0.6, (len(priors), 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.02, 0.4, (len(priors), 2))], 1).astype(np.float32)
    assert np.allclose(decode(encode(boxes, priors), priors), boxes, atol=1e-5)
    assert np.allclose(encode(centre_to_corners(priors), priors), 0, atol=1e-5)  # a prior encodes to zero


def test_iou_by_hand() -> None:
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 2, 3, 3]], float)
    assert np.allclose(iou(a, b), [[1 / 7, 1.0, 0.0]])


def test_matching_forces_the_best_prior_then_thresholds() -> None:
    priors = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], np.float32)
    # box A overlaps prior 0 best (IoU 0.36 < 0.5) - forced; box B equals prior 1; prior 2 overlaps nothing >= 0.5
    gt = np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 1.0, 1.0]], np.float32)
    t = match(gt, np.array([3, 1]), priors, threshold=0.5)
    assert t.labels.tolist() == [4, 2, 0]
    assert np.allclose(decode(t.loc[:2], priors[:2]), gt, atol=1e-5)
    empty = match(np.zeros((0, 4), np.float32), np.zeros(0, int), priors)
    assert not empty.labels.any()


# --------------------------------------------------------------------------- loss
def test_multibox_loss_on_a_hand_made_case() -> None:
    # one image, 5 priors, 2 classes + background; prior 0 is a positive of class 1 (label 2)
    conf = torch.tensor([[[0.0, 0.0, 2.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]])
    labels = torch.tensor([[2, 0, 0, 0, 0]])
    loc = torch.tensor([[[0.5, 0.0, 0.0, 2.0]] + [[9.0] * 4] * 4])
    loc_t = torch.zeros(1, 5, 4)

    def ce(row, k):
        return float(torch.logsumexp(torch.tensor(row), 0) - row[k])

    rows = conf[0].tolist()
    negatives = sorted((ce(rows[i], 0) for i in range(1, 5)), reverse=True)
    smooth_l1 = 0.5 * 0.5**2 + (2.0 - 0.5)          # |0.5| < 1 -> x^2/2; |2| >= 1 -> |x| - 1/2
    loss, parts = multibox_loss(loc, conf, loc_t, labels, neg_pos=2, beta=1.0)
    assert parts["positives"] == 1
    assert parts["conf"] == pytest.approx(ce(rows[0], 2) + sum(negatives[:2]), rel=1e-5)  # the two hardest negatives
    assert parts["loc"] == pytest.approx(smooth_l1, rel=1e-6)                             # negatives' offsets ignored
    loss_b, _ = multibox_loss(loc, conf, loc_t, labels, neg_pos=2, beta=3.0)
    assert float(loss_b) == pytest.approx(parts["conf"] + 3.0 * smooth_l1, rel=1e-5)


# --------------------------------------------------------------------------- NMS
def reference_nms(boxes, scores, labels, threshold):
    """Textbook greedy NMS, class by class (the definition OpenCV's implementation must meet)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(labels[j] != labels[i] or iou(boxes[[i]], boxes[[j]])[0, 0] <= threshold for j in kept):
            kept.append(i)
    return kept


def test_nms_matches_the_textbook_definition() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        xy = rng.uniform(0, 0.7, (40, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, (40, 2))], 1)
        scores = rng.choice([0.2, 0.5, 0.9], 40) + rng.uniform(0, 1e-3, 40) * (rng.random(40) < 0.5)
        labels = rng.integers(0, 3, 40)
        assert nms(boxes, scores, labels, 0.45).tolist() == reference_nms(boxes, scores, labels, 0.45)


def test_top_candidates_equal_a_full_stable_sort_ties_included() -> None:
    rng = np.random.default_rng(2)
    for n, k in ((50, 10), (500, 200), (30, 40), (200, 1)):
        scores = rng.choice([0.005, 0.02, 0.3, 0.7], n) + np.where(rng.random(n) < 0.5, rng.uniform(0, 1e-3, n), 0)
        scores = scores.astype(np.float32)  # half of them exact ties
        cand = np.flatnonzero(scores > 0.01)
        full = cand[np.argsort(-scores[cand], kind="stable")[:k]] if len(cand) > k else cand
        assert top_candidates(scores, 0.01, k).tolist() == full.tolist()


def test_postprocess_thresholds_topk_and_class_order() -> None:
    priors = np.array([[0.3, 0.3, 0.2, 0.2], [0.31, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]], np.float32)
    loc = np.zeros((1, 3, 4), np.float32)
    conf = np.log(np.array([[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.5, 0.0, 0.5]]], np.float32) + 1e-9)
    (d,) = postprocess(loc, conf, priors, PostprocessConfig(score_threshold=0.3, iou_threshold=0.45, top_k=10))
    assert d.labels.tolist() == [0, 1] and np.allclose(d.scores, [0.9, 0.5], atol=1e-6)  # prior 1 suppressed by 0
    assert np.allclose(d.boxes[0], [0.2, 0.2, 0.4, 0.4], atol=1e-6)
    (one,) = postprocess(loc, conf, priors, PostprocessConfig(score_threshold=0.3, top_k=1))
    assert len(one) == 1 and one.scores[0] == pytest.approx(0.9)


# --------------------------------------------------------------------------- mAP
def _case():
    gts = [GroundTruth(np.array([[0.1, 0.1, 0.3, 0.3]]), np.array([0])),
           GroundTruth(np.array([[0.5, 0.5, 0.9, 0.9]]), np.array([0]))]
    dets = [Detections(np.array([[0.1, 0.1, 0.3, 0.3], [0.6, 0.1, 0.8, 0.3]], np.float32), np.array([0.9, 0.8]),
                       np.array([0, 0])),
            Detections(np.array([[0.5, 0.5, 0.9, 0.868]], np.float32), np.array([0.7]), np.array([0]))]
    return gts, dets


def test_map_definitions_on_hand_made_detections() -> None:
    gts, dets = _case()  # ranked: TP 0.9, FP 0.8, TP 0.7 over two ground truths
    voc = voc_map(gts, dets, ("a", "b"))
    assert voc["all_point"]["a"] == pytest.approx(100 * (0.5 * 1 + 0.5 * 2 / 3))       # 83.33
    assert voc["voc07"]["a"] == pytest.approx(100 * (6 * 1 + 5 * 2 / 3) / 11)           # 84.85
    assert "b" not in voc["voc07"] and voc["map_voc07"] == voc["voc07"]["a"]            # no truth: left out
    coco = coco_map(gts, dets, ("a", "b"), [(200, 200), (200, 200)])
    assert coco["ap50"] == pytest.approx(100 * (51 + 50 * 2 / 3) / 101, abs=1e-6)      # 101-point: 83.50
    # the second TP has IoU 0.92: a TP at thresholds .50 .. .90, a FP at .95 (where AP = 51/101)
    assert coco["map"] == pytest.approx((9 * coco["ap50"] + 100 * 51 / 101) / 10, abs=1e-6)


def test_duplicates_and_wrong_class_are_false_positives() -> None:
    gts = [GroundTruth(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([1]))]
    dets = [Detections(np.array([[0.1, 0.1, 0.5, 0.5]] * 3, np.float32), np.array([0.9, 0.8, 0.7]),
                       np.array([1, 1, 0]))]
    voc = voc_map(gts, dets, ("a", "b"))
    assert voc["all_point"] == {"b": 100.0} and voc["voc07"] == {"b": 100.0}  # the duplicate ranks below the TP


def test_all_point_ap_agrees_with_pycocotools_on_random_detections() -> None:
    """Cross-check of the two definitions: all-point VOC AP@0.5 vs COCO's 101-point AP50."""
    rng = np.random.default_rng(7)
    gts, dets = [], []
    for _ in range(30):
        n = int(rng.integers(1, 4))
        xy = rng.uniform(0, 0.6, (n, 2))
        truth = np.concatenate([xy, xy + rng.uniform(0.1, 0.35, (n, 2))], 1)
        labels = rng.integers(0, 3, n)
        noisy = truth + rng.normal(0, 0.03, truth.shape)
        extra = np.concatenate([rng.uniform(0, 0.6, (2, 2)), rng.uniform(0.7, 0.95, (2, 2))], 1)
        gts.append(GroundTruth(truth, labels))
        dets.append(Detections(np.clip(np.concatenate([noisy, extra]), 0, 1).astype(np.float32),
                               rng.uniform(0, 1, n + 2), np.concatenate([labels, rng.integers(0, 3, 2)])))
    classes = ("a", "b", "c")
    voc = voc_map(gts, dets, classes)
    coco = coco_map(gts, dets, classes, [(200, 200)] * len(gts))
    assert 20 < voc["map_all_point"] < 95
    assert abs(voc["map_all_point"] - coco["ap50"]) < 1.0          # interpolation differs by < 1 point
    assert abs(voc["map_voc07"] - voc["map_all_point"]) < 5.0


def test_average_precision_edge_cases() -> None:
    assert average_precision(np.array([]), np.array([]), "all") == 0.0
    assert average_precision(np.array([1.0]), np.array([1.0]), "voc07") == 1.0
    with pytest.raises(ValueError):
        average_precision(np.array([1.0]), np.array([1.0]), "coco")


def test_prior_order_matches_the_heads_layout() -> None:
    """The model flattens (N, A*4, H, W) as (row, column, ratio): the priors must be in that order."""
    model = create_model("ssd_resnet50", num_classes=2, image_size=64).eval()
    for conv in itertools.chain(model.loc):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    last = model.loc[0]
    # make the first map's loc head output its own channel index at every cell: (a*4 + c)
    last.bias.data = torch.arange(16, dtype=torch.float32)
    with torch.inference_mode():
        loc, _ = model(torch.zeros(1, 3, 64, 64))
    cells = 8 * 8
    first = loc[0, : cells * 4].reshape(cells, 4, 4)
    assert torch.equal(first[5], torch.arange(16, dtype=torch.float32).reshape(4, 4))  # any cell: ratio a, coord c


def test_difficult_objects_follow_the_devkit() -> None:
    """A difficult object counts for no recall and a detection on it counts neither way (VOC devkit);
    pycocotools gets it as a crowd region, which it ignores the same way."""
    truth = np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.8, 0.8]])
    gts = [GroundTruth(truth, np.array([0, 0]), np.array([True, False]))]
    dets = [Detections(np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.8, 0.8], [0.0, 0.6, 0.2, 0.9]], np.float32),
                       np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))]
    voc = voc_map(gts, dets, ("a",))
    assert voc["gt_per_class"] == {"a": 1} and voc["difficult_per_class"] == {"a": 1}
    assert voc["all_point"]["a"] == pytest.approx(100.0) and voc["voc07"]["a"] == pytest.approx(100.0)
    first = [Detections(dets[0].boxes[:1], dets[0].scores[:1], dets[0].labels[:1])]
    assert voc_map(gts, first, ("a",))["all_point"]["a"] == 0.0   # only the difficult one found: no recall
    plain = voc_map([GroundTruth(truth, np.array([0, 0]))], first, ("a",))   # counted as a plain object instead
    assert plain["all_point"]["a"] == pytest.approx(50.0)
    assert coco_map(gts, dets, ("a",), [(200, 200)])["ap50"] == pytest.approx(100.0)
