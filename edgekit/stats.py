"""Paired statistics for accuracy gates: one artifact's answers against the FP32 model's on the same images.

Two artifacts scored on the same test images are compared image by image, never as two accuracies:

- a task whose answer per image is right or wrong (classification) gets the exact McNemar comparison: the
  images whose answer changed (``worse``: FP32 right, the artifact wrong; ``better``: the reverse), McNemar's
  exact p-value, and an exact interval for the drop: Clopper-Pearson on the share of changed images that got
  worse, scaled by the share of images that changed (the conditional interval McNemar's test inverts);
- any other figure (mAP, IoU, AP) gets a paired bootstrap over images: the same resampled images score both
  artifacts, and the percentile interval of the difference is the drop's interval.

A gate then has three outcomes, as a non-inferiority test has: **pass** when the interval's upper end is
within the allowed drop, **fail** when its lower end is beyond it (the paired evidence shows the drop is larger
than allowed), and **warn** otherwise: the test set is too small to show the drop is within it; the gate then
says how many images, at the rates observed, would decide. Identical answers show no drop at any size (nothing
changed, so there is no evidence of one); the resolution line says what one image weighs.

The paper gate uses the same rule on one artifact's figure: the interval of the figure itself (Clopper-Pearson
for right/wrong answers, the bootstrap otherwise) against the paper's figure less its tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from scipy.stats import binomtest

LEVEL = 0.95          # two-sided confidence of every interval
BOOTSTRAP = 1000      # resamples of the test images
MAX_IMAGES = 10_000_000
EPS = 1e-9

Figure = Callable[[np.ndarray], "float | None"]     # the headline (percent) with images weighted (counts drawn)


@dataclass
class Answers:
    """One artifact's answers on the test images, as a gate compares them."""
    quality: np.ndarray            # per image, higher is better (right/wrong: 1/0)
    figure: Figure                 # the headline figure with the images weighted (all ones: as reported)
    exact: bool = False            # quality is right (1) / wrong (0) and the figure is their mean: exact tests
    answer: np.ndarray | None = None   # per image, the answer itself (a class) where one wrong answer can change
    #                                    into another: counted as changed, though neither worse nor better

    @property
    def value(self) -> float | None:
        return self.figure(np.ones(len(self.quality)))

    @cached_property
    def one_image(self) -> float:
        """What one test image weighs in the figure (computed once: every gate against this reference reads it)."""
        return one_image(self)

    @classmethod
    def right_or_wrong(cls, right: np.ndarray, answer: np.ndarray | None = None) -> "Answers":
        right = np.asarray(right, np.float64)
        return cls(right, lambda w: 100.0 * float(np.dot(w, right) / max(w.sum(), EPS)), exact=True, answer=answer)


def _status(low: float, high: float, allowed: float) -> str:
    if high <= allowed + EPS:
        return "pass"
    if low > allowed + EPS:
        return "fail"
    return "warn"


def _exact_drop(worse: int, better: int, n: int) -> tuple[float, float]:
    changed = worse + better
    if changed == 0:
        return 0.0, 0.0
    ci = binomtest(worse, changed).proportion_ci(confidence_level=LEVEL, method="exact")
    scale = 100.0 * changed / n
    return scale * (2 * ci.low - 1), scale * (2 * ci.high - 1)


def _search(decided: Callable[[int], bool], n: int) -> int | None:
    """The smallest image count >= n at which ``decided`` holds (doubling, then bisection); None past
    ``MAX_IMAGES``."""
    high = n
    while not decided(high):
        if high >= MAX_IMAGES:
            return None
        high *= 2
    low = max(n, high // 2)
    while low < high:
        mid = (low + high) // 2
        if decided(mid):
            high = mid
        else:
            low = mid + 1
    return high


def _scaled_images(half_width: float, distance: float, n: int) -> int | None:
    """Images at which an interval narrowing as 1/sqrt(n) from ``half_width`` clears ``distance``."""
    if distance <= EPS:
        return None
    return int(np.ceil(n * (half_width / distance) ** 2))


def _bootstrap(figures: list[Figure], n: int, seed: int) -> np.ndarray:
    """(resamples, len(figures)) figures on the same resampled images; rows where any is undefined are NaN."""
    rng = np.random.default_rng(seed)
    out = np.full((BOOTSTRAP, len(figures)), np.nan)
    for k in range(BOOTSTRAP):
        w = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        values = [f(w) for f in figures]
        if all(v is not None for v in values):
            out[k] = values
    return out


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def one_image(answers: Answers) -> float:
    """What one test image weighs in the figure, in points: 100/n for right/wrong answers; else the largest
    change of the figure when one image is left out."""
    n = len(answers.quality)
    if answers.exact:
        return 100.0 / n
    full = answers.value
    if full is None:
        return float("nan")
    moves = []
    for i in range(n):
        w = np.ones(n)
        w[i] = 0
        v = answers.figure(w)
        if v is not None:
            moves.append(abs(v - full))
    return float(max(moves)) if moves else float("nan")


def paired_drop(reference: Answers, candidate: Answers, allowed: float, seed: int = 0) -> dict:
    """The candidate's drop from the reference on the same images, its interval and the gate's outcome."""
    n = len(reference.quality)
    if len(candidate.quality) != n:
        raise ValueError("paired answers must cover the same images")
    worse = int(np.sum(candidate.quality < reference.quality - EPS))
    better = int(np.sum(candidate.quality > reference.quality + EPS))
    ref_value, value = reference.value, candidate.value
    drop = (ref_value - value) if ref_value is not None and value is not None else float("nan")
    changed = worse + better
    if reference.answer is not None and candidate.answer is not None:
        changed = int(np.sum(np.asarray(reference.answer) != np.asarray(candidate.answer)))
    out = {"images": n, "worse": worse, "better": better, "changed": changed, "drop": drop,
           "allowed": allowed, "level": LEVEL, "one_image": reference.one_image}
    if reference.exact and candidate.exact:
        low, high = _exact_drop(worse, better, n)
        discordant = worse + better
        out.update(method="exact McNemar", low=low, high=high,
                   p_value=float(binomtest(worse, discordant).pvalue) if discordant else 1.0)
        status = _status(low, high, allowed)
        if status == "warn":
            out["images_to_decide"] = _search(
                lambda m: _status(*_exact_drop(round(worse * m / n), round(better * m / n), m), allowed) != "warn", n)
    else:
        drops = _bootstrap([reference.figure, candidate.figure], n, seed)
        low, high = _percentiles(drops[:, 0] - drops[:, 1])
        out.update(method=f"paired bootstrap over images ({BOOTSTRAP} resamples)", low=low, high=high)
        status = _status(low, high, allowed)
        if status == "warn":
            out["images_to_decide"] = _scaled_images(max(high - drop, drop - low), abs(allowed - drop), n)
    out["status"] = status
    return out


def _exact_share(right: int, n: int) -> tuple[float, float]:
    ci = binomtest(right, n).proportion_ci(confidence_level=LEVEL, method="exact")
    return 100.0 * ci.low, 100.0 * ci.high


def at_least(answers: Answers, target: float, seed: int = 0) -> dict:
    """The figure against a floor (the paper's figure less its tolerance): pass when the interval's lower end
    reaches it, fail when its upper end is below it, warn otherwise."""
    n = len(answers.quality)
    value = answers.value
    out = {"images": n, "value": value, "target": target, "level": LEVEL, "one_image": answers.one_image}
    if answers.exact:
        right = int(round(answers.quality.sum()))
        low, high = _exact_share(right, n)
        out["method"] = "exact (Clopper-Pearson)"
    else:
        low, high = _percentiles(_bootstrap([answers.figure], n, seed)[:, 0])
        out["method"] = f"bootstrap over images ({BOOTSTRAP} resamples)"
    # the same three outcomes as a drop: the shortfall below the target against an allowed shortfall of 0
    status = _status(target - high, target - low, 0.0)
    out.update(low=low, high=high, status=status)
    if status == "warn" and value is not None:
        if answers.exact:
            share = right / n
            out["images_to_decide"] = _search(
                lambda m: _status(*(target - v for v in reversed(_exact_share(round(share * m), m))), 0.0) != "warn", n)
        else:
            out["images_to_decide"] = _scaled_images(max(high - value, value - low), abs(value - target), n)
    return out


def describe(gate: dict) -> str:
    """One line a report can print under a gate: the interval, the changed images and the resolution."""
    level = f"{gate['level']:.0%}"
    if "drop" in gate:
        text = (f"drop {gate['drop']:.2f} [{gate['low']:.2f}, {gate['high']:.2f}] ({level}, {gate['method']}); "
                f"answers changed on {gate['changed']} of {gate['images']} images ({gate['worse']} worse, "
                f"{gate['better']} better"
                + (f", {gate['changed'] - gate['worse'] - gate['better']} wrong either way" if
                   gate["changed"] > gate["worse"] + gate["better"] else "") + ")")
        if "p_value" in gate:
            text += f", McNemar p = {gate['p_value']:.3g}"
    else:
        text = f"{gate['value']:.2f} [{gate['low']:.2f}, {gate['high']:.2f}] ({level}, {gate['method']})"
    text += f"; one image = {gate['one_image']:.2f} points"
    if gate["status"] == "warn":
        need = gate.get("images_to_decide")
        text += (f"; too few images to decide: about {need:,} images at these rates would decide" if need else
                 "; too few images to decide, and no test set would at these rates")
    return text
