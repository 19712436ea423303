"""The drift watch (issue 31): its statistic and threshold held to SciPy's, no alert when the frames come from the
validated distribution or when the line runs one class for a while, each robustness condition raising the
alert of the feature it moves and recognised as itself, and the report of a line's log."""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pytest
from scipy import stats

from edgekit.camera.drift import (
    IMAGE_FEATURES,
    DriftOptions,
    DriftWatch,
    Reference,
    image_features,
    ks_bound,
    uniformity,
    wasserstein,
)
from edgekit.data import robustness, synth
from edgekit.data.classes import NEU_CLASSES
from edgekit.errors import EdgekitError


def test_the_statistic_is_scipys_kolmogorov_smirnov_against_the_uniform() -> None:
    rng = np.random.default_rng(0)
    for n in (50, 500):
        for u in (rng.uniform(size=n), rng.beta(2, 1, size=n), rng.uniform(size=n).round(1)):      # ties too
            assert uniformity(u) == pytest.approx(stats.kstest(u, "uniform").statistic, abs=1e-12)


def test_the_distance_that_ranks_conditions_is_scipys_wasserstein() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.gamma(2.0, 1.0, size=120)
    assert wasserstein(np.sort(a), np.sort(b)) == pytest.approx(stats.wasserstein_distance(a, b), rel=0.03)


@pytest.mark.parametrize("n", [30, 100, 500])
def test_the_bound_is_the_kolmogorov_distributions_tail(n: int) -> None:
    """Against SciPy's exact one-sample distribution (kstwo): within 2 % where the watch uses it."""
    for alpha in (0.05, 0.01, 1e-3, 1e-5):
        assert ks_bound(alpha, n) == pytest.approx(stats.kstwo.isf(alpha, n), rel=0.02)


def _reference(values: dict, conditions: dict | None = None, size: int = 64, groups: list | None = None) -> Reference:
    return Reference({"format": 1, "size": size, "values": values, "figure": "accuracy %",
                      "conditions": conditions or {}, **({"groups": groups} if groups else {})})


def test_identical_distributions_raise_no_alert_over_a_long_window() -> None:
    """A reference of 300 values per feature; 2 hours of frames at 10 fps drawn from the same distributions
    (window 200, so the threshold allows 1 false alarm a day): no alert. The same watch sees a shift of half a
    standard deviation in one feature (it is not blind)."""
    rng = np.random.default_rng(1)
    draw = {"brightness": lambda k: rng.normal(120, 30, k), "unevenness": lambda k: rng.gamma(2.0, 0.05, k),
            "contrast": lambda k: rng.normal(25, 8, k), "sharpness": lambda k: rng.normal(2.5, 0.9, k),
            "noise": lambda k: rng.normal(0.4, 0.6, k), "score": lambda k: rng.beta(8, 1, k)}
    reference = _reference({f: d(300).tolist() for f, d in draw.items()})
    watch = DriftWatch(reference, DriftOptions(window=200))
    frames = 2 * 3600 * 10
    stream = np.stack([d(frames) for d in draw.values()], axis=1)
    for k, row in enumerate(stream):
        watch.add(row, None, k / 10.0)
    assert watch.alpha == pytest.approx(1.0 / (86400 / 19.9 * 6), rel=0.01)
    assert sum(watch.raised.values()) == 0, watch.raised
    for k in range(400):
        row = [d(1)[0] for d in draw.values()]
        row[0] += 15.0                                        # brightness half a standard deviation up
        watch.add(row, None, frames / 10.0 + k / 10.0)
    assert watch.alerts["brightness"] and sum(watch.alerts.values()) == 1


def test_a_line_that_runs_one_class_is_read_against_that_class() -> None:
    """Two classes whose images differ in brightness, 150 test images each: frames of one class only, 20 minutes
    of them, raise no alert when read against their class (what the model answered), and the brightness alert when
    read against all the test images together."""
    rng = np.random.default_rng(4)

    def frames(brightness: float, k: int) -> np.ndarray:
        return np.column_stack([rng.normal(brightness, 10, k), rng.gamma(2.0, 0.05, k), rng.normal(25, 8, k),
                                rng.normal(2.5, 0.9, k), rng.normal(0.4, 0.6, k)])

    test = np.vstack([frames(80, 150), frames(160, 150)])
    reference = _reference({f: test[:, i].tolist() for i, f in enumerate(IMAGE_FEATURES)},
                           groups=["dark"] * 150 + ["bright"] * 150)
    line = frames(160, 12000)
    by_class, pooled = (DriftWatch(reference, DriftOptions(window=200)) for _ in range(2))
    for k, row in enumerate(line):
        by_class.add(row, "bright", k / 10.0)
        pooled.add(row, "something the test images never answered", k / 10.0)
    assert sum(by_class.raised.values()) == 0 and pooled.alerts["brightness"] and pooled.raised["brightness"] == 1


def _textures(n: int, seed: int) -> list[np.ndarray]:
    """NEU-like steel textures from the built-in generator, 96 px."""
    rng = np.random.default_rng(seed)
    return [synth.render(NEU_CLASSES[i % len(NEU_CLASSES)], rng, 96)[0] for i in range(n)]


@pytest.fixture(scope="module")
def textures():
    """A reference from 240 textures and its robustness conditions; 240 other textures as the line's frames,
    clean and under each condition."""
    seen, line = _textures(240, 0), _textures(240, 1)

    def table(images):
        return np.array([image_features(im, 64) for im in images])

    def values(images):
        return {f: column.tolist() for f, column in zip(IMAGE_FEATURES, table(images).T)}

    conditions = {name: {"values": values(images), "accuracy": 50.0 + k}
                  for k, (name, images) in enumerate(robustness.degraded(seen, 0))}
    reference = _reference(values(seen), conditions)
    frames = {"clean": table(line), **{name: table(images) for name, images in robustness.degraded(line, 1)}}
    return reference, frames


@pytest.mark.parametrize("condition, feature", [("illum_a1", "unevenness"), ("noise_snr20", "noise"),
                                                ("blur_l5", "sharpness")])
def test_each_condition_raises_the_alert_of_its_feature(textures, condition: str, feature: str) -> None:
    """Clean frames fill the window without an alert; then frames under the condition turn on the feature's
    alert, and a full window of them resembles that very condition with the accuracy measured there."""
    reference, frames = textures
    rng = np.random.default_rng(2)
    watch = DriftWatch(reference, DriftOptions(window=100))
    clean, degraded = frames["clean"], frames[condition]
    for k, row in enumerate(clean[rng.integers(0, len(clean), 300)]):
        watch.add(row, None, k / 10.0)
    assert not any(watch.alerts.values()), watch.state
    for k, row in enumerate(degraded[rng.integers(0, len(degraded), 100)]):
        watch.add(row, None, 30.0 + k / 10.0)
    state = watch.state["features"][feature]
    assert state["alert"] and state["alerts"] == 1, watch.state
    assert state["resembles"]["condition"] == condition
    assert state["resembles"]["accuracy"] == reference.accuracy[condition]


def test_the_features_move_as_the_conditions_do(textures) -> None:
    """What each feature answers to: the illumination field raises unevenness, noise raises the noise estimate,
    blur lowers sharpness, and noise and blur leave brightness within 1 %."""
    _, frames = textures
    median = {name: dict(zip(IMAGE_FEATURES, np.median(table, axis=0))) for name, table in frames.items()}
    clean = median["clean"]
    assert median["illum_a1"]["unevenness"] > 1.5 * clean["unevenness"]
    assert median["noise_snr20"]["noise"] > clean["noise"] + 0.3               # log10: twice the noise
    assert median["blur_l5"]["sharpness"] < clean["sharpness"] - 0.3
    for name in ("noise_snr20", "blur_l5"):
        assert median[name]["brightness"] == pytest.approx(clean["brightness"], rel=0.01)


def test_a_damaged_reference_is_one_clear_error() -> None:
    good = {f: list(range(10)) for f in IMAGE_FEATURES}
    with pytest.raises(EdgekitError, match="format"):
        Reference({"format": 9, "size": 64, "values": good, "conditions": {}}, "x/reference.json")
    with pytest.raises(EdgekitError, match="noise: fewer than 8 finite values"):
        _reference(dict(good, noise=[1.0, float("nan")] * 5))
    with pytest.raises(EdgekitError, match="features"):
        _reference({"brightness": list(range(10))})
    with pytest.raises(EdgekitError, match="window >= 8"):
        DriftOptions(window=2).checked()


def test_the_report_counts_alerts_across_restarts_and_draws_them(tmp_path) -> None:
    """Two runs appended to one log (the watch's counts restart): alerts summed, the first one found, the
    picture written; a log without drift states is one clear error."""
    from edgekit.drift.report import report

    start = _dt.datetime(2026, 12, 1, tzinfo=_dt.timezone.utc)
    lines = []
    for run, alerts in enumerate(([0, 0, 1, 1, 2], [0, 1, 1])):
        for k, n in enumerate(alerts):
            on = k in (2, 4) if run == 0 else k == 1
            state = {"samples": 100 * k, "frames": 100 * k, "window": 100, "features": {
                "sharpness": {"statistic": 0.5 if on else 0.1, "threshold": 0.3, "alert": on, "alerts": n,
                              "median": 1.0, "band": [2.0, 3.0],
                              "resembles": {"condition": "blur_l5", "accuracy": 71.0, "distance": 0.1} if on else None},
                "brightness": {"statistic": 0.1, "threshold": 0.3, "alert": False, "alerts": 0, "median": 120.0,
                               "band": [80.0, 160.0]}}}
            time = start + _dt.timedelta(minutes=10 * run + k)
            lines.append({"frame": 100 * k, "time": time.isoformat(timespec="milliseconds"), "slot": "a",
                          "drift": state})
            lines.append({"frame": 100 * k + 1, "time": time.isoformat(timespec="milliseconds"), "slot": "a"})
    log = tmp_path / "line.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = report(log)
    rows = {r["feature"]: r for r in result["features"]}
    assert rows["sharpness"]["alerts"] == 3 and rows["brightness"]["alerts"] == 0
    assert rows["sharpness"]["first_alert_frame"] == 200 and rows["sharpness"]["resembles"] == "blur_l5"
    assert rows["sharpness"]["accuracy_there"] == 71.0 and rows["sharpness"]["max_statistic"] == 0.5
    assert (tmp_path / "line.drift.png").stat().st_size > 10000
    assert json.loads((tmp_path / "line.drift.json").read_text())["states"] == 8
    (tmp_path / "quiet.jsonl").write_text(json.dumps(lines[1]) + "\n")
    with pytest.raises(EdgekitError, match="quiet.jsonl: no drift state"):
        report(tmp_path / "quiet.jsonl")
    (tmp_path / "bad.jsonl").write_text("{\n")
    with pytest.raises(EdgekitError, match=r"bad.jsonl:1: not a line"):
        report(tmp_path / "bad.jsonl")


def test_each_tasks_frame_summary_is_its_answers_confidence_and_class() -> None:
    """What the watch follows as ``score`` and groups frames by: a classifier's probability and class, a
    detector's best detection, a segmenter's most confident defect, a decision's probability and verdict; 0 and
    "none" where nothing was found."""
    from edgekit.camera.post import classification, detection, segdec, segmentation

    classes = ("crazing", "inclusion", "patches")
    assert classification.frame_summary(classification.Prediction(2, 0.7), classes) == (0.7, "patches")
    boxes = np.zeros((2, 4), np.float32)
    found = detection.Detections(boxes, np.array([0.3, 0.9], np.float32), np.array([0, 1]))
    assert detection.frame_summary(found, classes) == (pytest.approx(0.9), "inclusion")
    assert detection.frame_summary(detection.Detections(boxes[:0], np.zeros(0, np.float32), np.zeros(0, int)),
                                   classes) == (0.0, "none")
    mask = segmentation.Segmentation(np.zeros((4, 4), np.uint8), (segmentation.Defect(3, (0, 0, 1, 1), 0.6, 0),
                                                                 segmentation.Defect(2, (0, 0, 1, 1), 0.8, 2)))
    assert segmentation.frame_summary(mask, classes) == (0.8, "patches")
    assert segmentation.frame_summary(mask._replace(defects=()), classes) == (0.0, "none")
    assert segdec.frame_summary(segdec.Decided(0.4, False, mask), classes) == (0.4, "good")


def test_the_run_commands_help_states_the_watchs_defaults() -> None:
    """`run --help` names the defaults without importing OpenCV to build its parser: held to DriftOptions."""
    from edgekit.camera.app import commands

    run = commands()["run"]
    text = " ".join(run.format_help().split())
    d = DriftOptions()
    assert (f"{d.window} frames, {d.false_alarms_per_day:g} false alarm a day, {100 * d.budget:g} % of the loop's "
            f"time, state every {d.state_every} frames") in text
