"""Drift watch: whether the frames a camera runs still look like the images its model was validated on.

Per frame, cheap image features at the model's input size (:func:`image_features`; the grey frame resized as the
model sees it): ``brightness`` (mean grey level), ``unevenness`` (how the light varies over the field: the
spread of a 4x4 grid of block means over the mean), ``contrast`` (grey-level standard deviation),
``sharpness`` (log10 variance of the Laplacian) and ``noise`` (log10 of Immerkaer's noise estimate: the mean
absolute response of the 3x3 mask that cancels planes and straight edges, "Fast noise variance estimation",
CVIU 1996); beside them the model's ``score`` for the frame (its confidence, as
``edgekit.camera.post``'s ``frame_summary`` reads an answer).

A bundle carries the reference (``drift/reference.json``, written at bundle time from validation): each
feature over the test images with what the model answered for each (its group: the class, "none", "good"),
and the same over the test images under each of the paper's robustness conditions and severities, with the
figure the build measured under each. A frame is read against the test images of its own group (or all of
them, for a group with fewer than ``GROUP_MIN`` test images): each feature becomes its quantile there (ties,
such as a classifier's many scores of 1.0, split at random: the randomised probability integral transform,
uniform whatever the distribution), so a line that runs one class for a while is not a drift, while a frame
unlike the validated images of what the model answered is. :class:`DriftWatch` keeps the last ``window``
sampled frames and every ``EVERY`` samples (a quarter window if shorter) compares each feature's quantiles
with the uniform distribution they follow on frames like the validated ones, by the Kolmogorov-Smirnov
statistic. The reference is one fixed sample, so
the threshold bounds two errors apart (the triangle inequality): the reference's distance from the conditions
it stands for, at most :func:`ks_bound` (``REFERENCE_ALPHA``, the size of each frame's group, averaged over the
window) but for one reference in a hundred, plus the window's, at most :func:`ks_bound` (alpha, window) but
with probability alpha per look. Alpha makes clean frames raise ``false_alarms_per_day`` alerts a day over all
features, the windows that fit in a day counted as independent looks (their number fixed when the window first
fills, from how long it took). An alert turns off below ``CLEAR`` of its threshold. The condition a drifted
feature most resembles is the one whose quantiles of that feature lie nearest the window's (by the Wasserstein
distance, which still ranks distributions that no longer overlap), among the conditions that move it (their
own statistic past the reference's bound), unless the clean images lie nearer; the figure the build measured
there comes with it.

Frames are sampled within a time budget (``budget``, a share of the run loop's time): a fast model on a slow CPU
watches every few frames, a slow one every frame. Device-side code: Python 3.6+, numpy and OpenCV.
"""
import collections
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgekit.errors import EdgekitError

FOLDER, FILE, FORMAT = "drift", "reference.json", 1
IMAGE_FEATURES = ("brightness", "unevenness", "contrast", "sharpness", "noise")
FEATURES = IMAGE_FEATURES + ("score",)
GRID = 4            # unevenness: block means over a GRID x GRID grid
EVERY = 25          # samples between two comparisons with the reference (at most a quarter of the window)
CLEAR = 0.8         # an alert turns off below this share of its threshold
REFERENCE_ALPHA = 0.01      # the chance that the reference lies further from its conditions than the threshold allows
GROUP_MIN = 8       # test images a group needs to be read on its own
ALL = "*"           # the group of every test image
DAY = 86400.0
_SECOND = np.array([1.0, -2.0, 1.0], np.float32)      # Immerkaer's mask is this second difference, both ways


def image_features(image: np.ndarray, size: int) -> List[float]:
    """The image features of one frame (uint8 grey or BGR, any size), at the model's input ``size``."""
    if image.ndim == 3:
        image = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.shape != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(image))
    blocks = cv2.resize(image, (GRID, GRID), interpolation=cv2.INTER_AREA)
    _, laplacian = cv2.meanStdDev(cv2.Laplacian(image, cv2.CV_16S))
    mask = cv2.sepFilter2D(image, cv2.CV_16S, _SECOND, _SECOND)[1:-1, 1:-1]
    sigma = math.sqrt(math.pi / 2.0) * cv2.norm(mask, cv2.NORM_L1) / (6.0 * max(mask.size, 1))
    return [mean, float(blocks.std()) / max(mean, 1.0), std, math.log10(float(laplacian[0, 0]) ** 2 + 1.0),
            math.log10(sigma + 0.1)]


QUANTILE_POINTS = 64


def sorted_quantiles(values_sorted: np.ndarray, levels: Any) -> Any:
    """Quantiles of ascending values, linearly interpolated (``np.quantile``'s default method). ``np.interp``
    alone: ``np.quantile`` and ``np.median`` import ``numpy.ma``, 4 MB resident on a camera."""
    return np.interp(np.asarray(levels) * (len(values_sorted) - 1), np.arange(len(values_sorted)), values_sorted)


def wasserstein(a_sorted: np.ndarray, b_sorted: np.ndarray, points: int = QUANTILE_POINTS) -> float:
    """The 1-Wasserstein distance between two samples (ascending): the mean gap between their quantile functions,
    read at ``points`` evenly spaced levels."""
    levels = (np.arange(points) + 0.5) / points
    return float(np.mean(np.abs(sorted_quantiles(a_sorted, levels) - sorted_quantiles(b_sorted, levels))))


def ks_bound(alpha: float, n: int) -> float:
    """The distance between ``n`` values' empirical distribution and the distribution they are drawn from that
    is exceeded with probability ``alpha``: the Kolmogorov distribution's tail (its leading term: within 3e-5 of
    the whole series for alpha <= 0.1) with Stephens' small-sample correction."""
    root = math.sqrt(n)
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) / (root + 0.12 + 0.11 / root)


def quantile(reference_sorted: np.ndarray, values: Any, jitter: Any) -> Any:
    """Where ``values`` fall among ``reference_sorted`` (ascending), as a fraction; a value equal to some of
    the reference's placed among them by ``jitter`` in [0, 1) (the randomised probability integral transform)."""
    below = np.searchsorted(reference_sorted, values, "left")
    upto = np.searchsorted(reference_sorted, values, "right")
    return (below + jitter * (upto - below)) / float(len(reference_sorted))


def uniformity(quantiles: np.ndarray) -> float:
    """The Kolmogorov-Smirnov statistic of values in [0, 1] against the uniform distribution."""
    u = np.sort(quantiles)
    n = float(len(u))
    return float(max(np.max(np.arange(1, len(u) + 1) / n - u), np.max(u - np.arange(len(u)) / n)))


class Reference:
    """A bundle's ``drift/reference.json``: each feature over the validated images (``values``) with the model's
    answer for each (``groups``), the same over the images under each robustness condition (``conditions``: their
    ``values``, ``groups`` and the ``accuracy`` validation measured there, or null)."""

    def __init__(self, raw: Dict[str, Any], where: str = FILE) -> None:
        try:
            if raw.get("format") != FORMAT:
                raise ValueError("format {!r}, this edgekit reads {}".format(raw.get("format"), FORMAT))
            self.size = int(raw["size"])
            self.features = tuple(f for f in FEATURES if f in raw["values"])
            table = {f: _finite(raw["values"][f], where, f) for f in self.features}
            images = len(table[IMAGE_FEATURES[0]])
            groups = _groups(raw.get("groups"), images, where, "groups")
            self.groups = {ALL: {f: np.sort(v) for f, v in table.items()}}
            for g in sorted(set(groups)):
                members = groups == g
                if members.sum() >= GROUP_MIN:
                    self.groups[g] = {f: np.sort(v[members]) for f, v in table.items()}
            self.conditions = {}        # type: Dict[str, Dict[str, np.ndarray]]
            for c, entry in raw["conditions"].items():
                c_groups = _groups(entry.get("groups", groups.tolist()), images, where, c + " groups")
                self.conditions[c] = {f: np.sort(self.quantiles(f, _finite(v, where, c + " " + f), c_groups))
                                      for f, v in entry["values"].items() if f in self.features}
            self.accuracy = {c: entry.get("accuracy") for c, entry in raw["conditions"].items()}
            self.figure, self.clean = raw.get("figure"), raw.get("clean")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EdgekitError("{}: not a drift reference ({}: {})".format(where, type(exc).__name__, exc)) from None
        if self.size < 8 or not set(IMAGE_FEATURES) <= set(self.features) or len(set(map(len, table.values()))) > 1:
            raise EdgekitError("{}: not a drift reference (size {}, features {}, one value per image each)".format(
                where, self.size, ", ".join(self.features)))
        self.raw = raw
        self.values = self.groups[ALL]
        self.band = {f: [float(q) for q in sorted_quantiles(v, [0.05, 0.95])] for f, v in self.values.items()}
        self.bounds = {g: ks_bound(REFERENCE_ALPHA, len(ref[IMAGE_FEATURES[0]])) for g, ref in self.groups.items()}
        self.moves = {f: sorted(c for c, q in self.conditions.items() if f in q and uniformity(q[f]) > self.bounds[ALL])
                      for f in self.features}         # the conditions that move each feature

    @classmethod
    def load(cls, folder: Path) -> Optional["Reference"]:
        """``folder/drift/reference.json``, or None where the bundle carries none."""
        path = Path(folder) / FOLDER / FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
        except ValueError as exc:
            raise EdgekitError("{}: not JSON ({})".format(path, exc)) from None
        return cls(raw if isinstance(raw, dict) else {}, str(path))

    def write(self, folder: Path) -> Path:
        path = Path(folder) / FOLDER / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.raw) + "\n")
        return path

    def group(self, answered: Optional[str]) -> str:
        """The group a frame is read against: what the model answered, where the test images hold enough of it."""
        return answered if answered in self.groups else ALL

    def quantiles(self, feature: str, values: np.ndarray, groups: Sequence[str],
                  rng: Optional[random.Random] = None) -> np.ndarray:
        """Each value's quantile among the test images of its group, a tie placed at random among its equals."""
        rng = rng or random.Random(0)          # not numpy.random: 2.5 MB resident on a camera
        out = np.empty(len(values))
        groups = np.asarray([self.group(g) for g in groups])
        for g in sorted(set(groups.tolist())):
            at = groups == g
            jitter = np.array([rng.random() for _ in range(int(at.sum()))])
            out[at] = quantile(self.groups[g][feature], values[at], jitter)
        return out

    def resembles(self, feature: str, quantiles: np.ndarray) -> Optional[Dict[str, Any]]:
        """The robustness condition that moves ``feature`` whose quantiles lie nearest the window's, with the
        figure validation measured under it and the distance; None when the clean images (uniform quantiles) lie
        nearer than every such condition."""
        window = np.sort(quantiles)
        levels = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
        best, nearest = None, wasserstein(levels, window)
        for name in self.moves[feature]:
            distance = wasserstein(self.conditions[name][feature], window)
            if distance < nearest:
                best, nearest = name, distance
        if best is None:
            return None
        return {"condition": best, "accuracy": self.accuracy[best], "distance": _round(nearest)}


def _finite(values: Sequence[float], where: str, what: str) -> np.ndarray:
    out = np.asarray(values, np.float64)
    if out.ndim != 1 or len(out) < GROUP_MIN or not np.isfinite(out).all():
        raise EdgekitError("{}: not a drift reference ({}: fewer than {} finite values)".format(where, what, GROUP_MIN))
    return out


def _groups(groups: Optional[Sequence[str]], images: int, where: str, what: str) -> np.ndarray:
    if groups is None:
        return np.array([ALL] * images)
    if len(groups) != images:
        raise EdgekitError("{}: not a drift reference ({}: {} for {} images)".format(where, what, len(groups), images))
    return np.asarray([str(g) for g in groups])


class DriftOptions(NamedTuple):
    """How ``edgekit run`` watches (``--drift-*``)."""
    window: int = 500                   # sampled frames compared with the reference
    false_alarms_per_day: float = 1.0   # alerts a day on frames like the validated ones, all features together
    budget: float = 0.02                # share of the run loop's time the watch may take
    state_every: int = 100              # a JSON line carries the watch's state every this many frames; 0: never

    def checked(self) -> "DriftOptions":
        if self.window < 8 or not self.false_alarms_per_day > 0 or not 0 < self.budget <= 1 or self.state_every < 0:
            raise EdgekitError("drift watch: needs window >= 8, false alarms a day > 0, 0 < budget <= 1 and state "
                               "every >= 0 frames (got {}, {}, {}, {})".format(*self))
        return self


def _round(v: float) -> float:
    return float("{:.4g}".format(v))


class DriftWatch:
    """The last ``window`` sampled frames against a :class:`Reference`; alerts per feature."""

    def __init__(self, reference: Reference, options: DriftOptions = DriftOptions()) -> None:
        options.checked()
        self.reference, self.window, self.budget = reference, options.window, options.budget
        self.false_alarms_per_day = options.false_alarms_per_day
        self.every = max(1, min(EVERY, self.window // 4))
        self.features = reference.features
        self._rows = collections.deque(maxlen=self.window)       # type: collections.deque
        self._first = None          # type: Optional[float]
        self.samples = 0
        self.frames = 0
        self.alpha = None           # type: Optional[float]
        self.alerts = {f: False for f in self.features}
        self.raised = {f: 0 for f in self.features}          # alerts turned on so far
        self.state = None           # type: Optional[Dict[str, Any]]
        self.changed = []           # type: List[str]
        self._rng = random.Random(0)                         # where a tie falls among its equals
        self._spent = 0.0
        self._started = time.perf_counter()

    def due(self) -> bool:
        """Whether the next frame fits the time budget (called once per frame)."""
        self.frames += 1
        return self._spent <= self.budget * (time.perf_counter() - self._started)

    def observe(self, image: np.ndarray, answered: Tuple[float, str]) -> Optional[Dict[str, Any]]:
        """Sample one frame: its image and the model's (score, group) for it; the new state when the window was
        compared."""
        t0 = time.perf_counter()
        values = image_features(image, self.reference.size)
        if "score" in self.features:
            values.append(float(answered[0]))
        try:
            return self.add(values, answered[1], time.monotonic())
        finally:
            self._spent += time.perf_counter() - t0

    def add(self, values: Sequence[float], answered: Optional[str], now: float) -> Optional[Dict[str, Any]]:
        """One sample: its feature values (in ``features`` order) and what the model answered, at ``now``
        (seconds)."""
        group = self.reference.group(answered)
        ref = self.reference.groups[group]
        row = [float(v) for v in values]
        for f, v in zip(self.features, values):
            row.append(float(quantile(ref[f], v, self._rng.random())))
        row.append(self.reference.bounds[group])
        self._rows.append(row)
        self.samples += 1
        if self._first is None:
            self._first = now
        if len(self._rows) < self.window or (self.samples - self.window) % self.every:
            return None
        if self.alpha is None:
            looks = DAY / max(now - self._first, 1e-3)          # windows a day at the rate it filled
            self.alpha = min(0.5, self.false_alarms_per_day / (looks * len(self.features)))
        return self.compare()

    def compare(self) -> Dict[str, Any]:
        """Each feature's window against the reference: statistic, threshold, alert, alerts raised so far, median,
        the reference's 5-95 % band and, for an alert, the condition it resembles."""
        rows = np.asarray(self._rows, np.float64)
        k = len(self.features)
        threshold = ks_bound(self.alpha, len(rows)) + float(rows[:, -1].mean())
        features, self.changed = {}, []
        for i, f in enumerate(self.features):
            column, quantiles = rows[:, i], rows[:, k + i]
            statistic = uniformity(quantiles)
            was = self.alerts[f]
            self.alerts[f] = statistic > threshold or (was and statistic > CLEAR * threshold)
            self.raised[f] += int(self.alerts[f] and not was)
            if self.alerts[f] != was:
                self.changed.append(f)
            median = float(sorted_quantiles(np.sort(column), 0.5))
            features[f] = {"statistic": _round(statistic), "threshold": _round(threshold), "alert": self.alerts[f],
                           "alerts": self.raised[f], "median": _round(median),
                           "band": [_round(v) for v in self.reference.band[f]]}
            if self.alerts[f]:
                features[f]["resembles"] = self.reference.resembles(f, quantiles)
        self.state = {"samples": self.samples, "frames": self.frames, "window": len(rows), "features": features}
        return self.state

    def news(self) -> List[str]:
        """Log lines for the alerts the last comparison turned on or off."""
        lines = []
        for f in self.changed:
            entry = self.state["features"][f]
            if not self.alerts[f]:
                lines.append("drift alert cleared: {}".format(f))
                continue
            like = entry.get("resembles")
            said = "drift alert: {} (statistic {} > {}; window median {}, reference 5-95 % {}..{})".format(
                f, entry["statistic"], entry["threshold"], entry["median"], *entry["band"])
            if like and like["accuracy"] is not None and self.reference.clean is not None:
                said += "; like {} ({} {:.4g} there, {:.4g} on the validated images)".format(
                    like["condition"], self.reference.figure, like["accuracy"], self.reference.clean)
            elif like:
                said += "; like {} (its figure there not measured: validate with --robustness)".format(
                    like["condition"])
            lines.append(said)
        return lines

    def summary(self) -> Dict[str, Any]:
        return {"samples": self.samples, "frames": self.frames, "window": self.window,
                "false_alarms_per_day": self.false_alarms_per_day, "alpha": self.alpha,
                "alerts_raised": dict(self.raised), "alerts_on": sorted(f for f, on in self.alerts.items() if on)}
