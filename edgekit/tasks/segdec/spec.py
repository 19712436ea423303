"""A segmentation+decision recipe's ``decision:`` section (its masks are read and post-processed by the
``segmentation:`` section, binary): the supervision mode, the loss of seeds/001 and the decision threshold.

Loss (seeds/001, Eq. 5): L = theta_n * gamma * L_seg + (1 - theta_n) * delta * L_dec, per image, averaged
over the batch. gamma is 1 for an image whose pixels are labelled (every defect-free image, and the
positives that carry pixel labels in the supervision mode) and 0 otherwise. theta falls from 1 over the
epochs: ``schedule: decay`` is Eq. 4 for a coefficient that is not learned, theta_n = (1 - beta)^n (the
gradient term has nothing to follow), which keeps the weight on segmentation that the linear balance
lambda_n = 1 - n / n_ep (SegDec's, ``schedule: linear``) gives away by mid-training. L_seg is the paper's
MSE of the sigmoid map against the mask max-pooled to the map's 1/8 resolution (``seg_loss: mse``), or
the public code's BCE on the logits (``bce``); L_dec is BCE on the decision logit.

As the reference code (vicoslab/mixed-segdec-net-comind2021) trains it, where the paper is silent:
- ``decision_gradient``: how much of the decision loss's gradient reaches the segmentation subnet (1: end to
  end, as the paper trains; 0: stopped, as the reference code trains Severstal). Unset, by mode, as measured on
  Magnetic-Tile at the CPU budget (benchmarks/results/segdec-net-mt-cpu-*-before-after.md): stopped in full
  supervision, where every mask trains the map and the stop keeps it (map Dice 66.2 against 14.4, AP 84.5
  against 81.9); end to end in mixed and weak, where the few masks cannot train the features the decision
  needs (stopping cost 17.9 AP with 50 masks, 1.3 with 10).
- ``balanced``: an epoch is every positive and as many negatives, picked by frequency sampling (those drawn
  least so far first), not every image.
- ``dilate``: the masks grown by a square of this side at their own resolution before resizing (the
  reference: 1 on Severstal, 7 on KolektorSDD and DAGM); training targets only, never the test masks.
- ``weight_p``, ``weight_max``: the pixel loss inside a defect weighted by its distance to the defect's edge,
  (d / d_max)^p x max (1 outside), so a label's uncertain border counts little (the reference: p 2, max 1 on
  Severstal); ``weight_p: null`` for the unweighted loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from edgekit.errors import EdgekitError

MODES = ("weak", "mixed", "full")
SCHEDULES = ("decay", "linear")
SEG_LOSSES = ("mse", "bce")


@dataclass(frozen=True)
class DecisionSpec:
    threshold: float = 0.5            # defect probability at which an image is defective (the line's decision)
    supervision: str = "full"         # weak: image labels only; mixed: pixel_labels of the positives; full
    pixel_labels: float | None = None  # mixed: how many positives keep their masks (count, or a fraction < 1)
    schedule: str = "decay"
    beta: float = 0.01                # theta_n = (1 - beta)^n
    delta: float = 0.1                # weight of the decision loss (Table 4)
    seg_loss: str = "mse"
    decision_gradient: float | None = None   # None: 0 in full supervision, 1 in mixed and weak
    balanced: bool = True
    dilate: int = 1
    weight_p: float | None = 2.0
    weight_max: float = 1.0

    @classmethod
    def from_recipe(cls, recipe) -> "DecisionSpec":
        raw = dict(getattr(recipe, "decision", None) or {})
        where = f"{recipe.path}: decision"
        try:
            spec = cls(**raw)
        except TypeError as exc:
            raise EdgekitError(f"{where}: {exc}") from None
        if spec.supervision not in MODES or spec.schedule not in SCHEDULES or spec.seg_loss not in SEG_LOSSES:
            raise EdgekitError(f"{where}: supervision one of {', '.join(MODES)}, schedule one of "
                               f"{', '.join(SCHEDULES)}, seg_loss one of {', '.join(SEG_LOSSES)}")
        if (spec.supervision == "mixed") != (spec.pixel_labels is not None):
            raise EdgekitError(f"{where}: pixel_labels (a count, or a fraction of the positives) goes with "
                               "supervision: mixed, and only with it")
        if spec.pixel_labels is not None and not (spec.pixel_labels >= 1 and float(spec.pixel_labels).is_integer()
                                                  or 0 < spec.pixel_labels < 1):
            raise EdgekitError(f"{where}: pixel_labels must be a whole count >= 1 or a fraction in (0, 1), not "
                               f"{spec.pixel_labels!r}")
        if not 0 < spec.threshold < 1 or not 0 <= spec.beta < 1 or spec.delta <= 0:
            raise EdgekitError(f"{where}: threshold in (0, 1), beta in [0, 1), delta > 0")
        if (int(spec.dilate) != spec.dilate or spec.dilate < 1 or spec.weight_max <= 0
                or spec.weight_p is not None and spec.weight_p < 0
                or spec.decision_gradient is not None and not 0 <= spec.decision_gradient <= 1):
            raise EdgekitError(f"{where}: dilate a whole number >= 1, weight_p >= 0 (or null), weight_max > 0, "
                               "decision_gradient in [0, 1] (or null: by the supervision mode)")
        return spec

    @property
    def gradient(self) -> float:
        """The decision loss's gradient scale into the segmentation subnet: ``decision_gradient``, else by mode."""
        if self.decision_gradient is not None:
            return float(self.decision_gradient)
        return 0.0 if self.supervision == "full" else 1.0

    def theta(self, epoch: int, epochs: int) -> float:
        """The segmentation loss's share at ``epoch`` (0-based) of the ``epochs`` actually trained (``--epochs``
        and the ``gpu:`` profile included)."""
        if self.schedule == "linear":
            return 1.0 - epoch / max(1, epochs)
        return (1.0 - self.beta) ** epoch

    def labelled_positives(self, positives: int) -> int:
        """How many of ``positives`` keep their pixel labels."""
        if self.supervision == "weak":
            return 0
        if self.supervision == "full":
            return positives
        n = self.pixel_labels if self.pixel_labels >= 1 else math.ceil(self.pixel_labels * positives)
        return min(int(n), positives)
