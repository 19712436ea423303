"""The paired statistics behind the accuracy gates, on hand-made answers."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.camera.post.detection import Detections
from edgekit.stats import Answers, at_least, describe, one_image, paired_drop
from edgekit.tasks.detection.metrics import GroundTruth, match, voc_map, weighted_map


def answers(n: int, wrong: int = 0) -> np.ndarray:
    right = np.ones(n, bool)
    right[:wrong] = False
    return right


def flipped(right: np.ndarray, worse: int = 0, better: int = 0) -> np.ndarray:
    """``right`` with ``worse`` right answers made wrong and ``better`` wrong answers made right."""
    out = right.copy()
    out[np.flatnonzero(right)[:worse]] = False
    out[np.flatnonzero(~right)[:better]] = True
    return out


@pytest.mark.parametrize("n", [3, 10, 144, 1000, 100_000])
def test_identical_answers_show_no_drop_at_any_size(n) -> None:
    ref = answers(n, wrong=n // 7)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(ref.copy()), allowed=1.0)
    assert gate["drop"] == 0.0 and gate["low"] == gate["high"] == 0.0 and gate["changed"] == 0
    assert gate["status"] == "pass" and gate["p_value"] == 1.0


def test_one_flip_in_144_is_not_significant() -> None:
    ref = answers(144, wrong=8)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(flipped(ref, worse=1)), allowed=1.0)
    assert (gate["worse"], gate["better"]) == (1, 0) and gate["drop"] == pytest.approx(100 / 144)
    assert gate["p_value"] == 1.0 and gate["low"] < 0 < gate["high"]          # no evidence of a drop at all
    assert gate["status"] == "pass"                                          # one image is within the 1 point


def test_two_flips_in_144_warn_and_say_how_many_images_would_decide() -> None:
    ref = answers(144, wrong=8)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(flipped(ref, worse=2)), allowed=1.0)
    assert gate["status"] == "warn" and gate["drop"] == pytest.approx(200 / 144)
    assert gate["images_to_decide"] > 144
    bigger = int(gate["images_to_decide"])
    ref_big = answers(bigger, wrong=round(8 * bigger / 144))
    decided = paired_drop(Answers.right_or_wrong(ref_big),
                          Answers.right_or_wrong(flipped(ref_big, worse=round(2 * bigger / 144))), allowed=1.0)
    assert decided["status"] != "warn"
    assert "too few images to decide" in describe(gate)


def test_a_real_five_point_drop_on_1000_fails() -> None:
    ref = answers(1000, wrong=20)
    worse = flipped(ref, worse=60, better=10)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(worse), allowed=1.0)
    assert gate["drop"] == pytest.approx(5.0) and gate["low"] > 1.0 and gate["status"] == "fail"
    assert gate["p_value"] < 1e-6


def test_balanced_changes_cost_nothing_but_widen_the_interval() -> None:
    ref = answers(144, wrong=10)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(flipped(ref, worse=3, better=3)), 1.0)
    assert gate["drop"] == 0.0 and gate["low"] < -1.0 and gate["high"] > 1.0 and gate["status"] == "warn"


def test_resolution_line_says_what_one_image_weighs() -> None:
    ref = answers(144)
    gate = paired_drop(Answers.right_or_wrong(ref), Answers.right_or_wrong(ref), allowed=1.0)
    assert one_image(Answers.right_or_wrong(ref)) == pytest.approx(100 / 144)
    line = describe(gate)
    assert "one image = 0.69 points" in line and "answers changed on 0 of 144 images" in line


def test_paper_gate_uses_the_same_rule() -> None:
    perfect = Answers.right_or_wrong(answers(288))
    assert at_least(perfect, 99.0)["status"] == "warn"           # 288 right answers cannot show >= 99 %
    assert at_least(Answers.right_or_wrong(answers(2000)), 99.0)["status"] == "pass"
    assert at_least(Answers.right_or_wrong(answers(288, wrong=20)), 99.0)["status"] == "fail"


def detection_fixture(n: int = 24, seed: int = 0) -> tuple[list[GroundTruth], list[Detections]]:
    """``n`` images of one or two objects each (two classes) and a detector that finds each with noise."""
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for _ in range(n):
        k = rng.integers(1, 3)
        xy = rng.uniform(0.05, 0.5, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(0.2, 0.4, (k, 2))], 1)
        labels = rng.integers(0, 2, k)
        gts.append(GroundTruth(boxes, labels))
        found = boxes + rng.normal(0, 0.01, boxes.shape)
        false = rng.uniform(0, 0.5, (1, 4)) + [[0, 0, 0.3, 0.3]]
        dets.append(Detections(np.concatenate([found, false]).astype(np.float32),
                               np.concatenate([rng.uniform(0.5, 1.0, k), rng.uniform(0.0, 0.7, 1)]).astype(np.float32),
                               np.concatenate([labels, rng.integers(0, 2, 1)]).astype(np.int64)))
    return gts, dets


def detection_answers(gts, dets) -> Answers:
    from edgekit.tasks.detection.metrics import per_image_hits

    matched = [match(gts, dets, k) for k in range(2)]
    return Answers(per_image_hits(matched, len(dets), 0.5), lambda w: weighted_map(matched, w))


def test_weighted_map_is_the_map_of_the_images_repeated() -> None:
    gts, dets = detection_fixture()
    matched = [match(gts, dets, k) for k in range(2)]
    assert weighted_map(matched, np.ones(len(gts))) == pytest.approx(voc_map(gts, dets, ("a", "b"))["map_voc07"])
    w = np.zeros(len(gts))
    w[[0, 3, 5]] = [2, 1, 3]
    picked = [0, 0, 3, 5, 5, 5]
    repeated = voc_map([gts[i] for i in picked], [dets[i] for i in picked], ("a", "b"))["map_voc07"]
    assert weighted_map(matched, w) == pytest.approx(repeated)


def test_bootstrap_interval_on_a_small_detection_fixture() -> None:
    gts, dets = detection_fixture()
    ref = detection_answers(gts, dets)
    same = paired_drop(ref, detection_answers(gts, dets), allowed=1.0)
    assert same["low"] == same["high"] == 0.0 and same["status"] == "pass"
    # the candidate misses the first object of a third of the images: a real drop the interval must hold
    missed = [Detections(d.boxes[1:], d.scores[1:], d.labels[1:]) if i % 3 == 0 else d for i, d in enumerate(dets)]
    gate = paired_drop(ref, detection_answers(gts, missed), allowed=1.0)
    assert gate["method"].startswith("paired bootstrap")
    assert gate["worse"] == 8 and gate["better"] == 0
    assert gate["low"] <= gate["drop"] <= gate["high"] and gate["drop"] > 5.0
    assert gate["low"] > 1.0 and gate["status"] == "fail"
    again = paired_drop(ref, detection_answers(gts, missed), allowed=1.0)
    assert (again["low"], again["high"]) == (gate["low"], gate["high"])          # seeded: the same interval
    assert one_image(ref) > 0
