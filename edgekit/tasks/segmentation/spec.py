"""A segmentation recipe's ``segmentation:`` section, checked when first read: which mask values are
defects, how odd masks are treated, the loss weights and the deployed post-processing."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgekit.data.masks import ON_MISSING, ON_SIZE
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class LossWeights:
    seg: float = 1.4           # lambda: BCE + Dice on the mask (seeds/004, 4.3)
    loc: float = 0.4           # mu: the same on LAM's bounding-rectangle map
    diff: float = 0.2          # nu: feature-difference loss between SPPM and LSPM
    bce: float = 0.5           # BCE's share inside loss_seg (Eq. 4's 1/2)
    epsilon: float = 1.0       # loss_diff = mean 1 / (MSE(V1, V2) + epsilon)


@dataclass(frozen=True)
class PostprocessSpec:
    threshold: float = 0.5     # defect probability at which a pixel is defect
    min_area: int = 0          # components smaller than this (pixels at the model's resolution) dropped
    connectivity: int = 8

    @property
    def logit_threshold(self) -> float:
        """The threshold on the exported logits (sigmoid is monotonic: no sigmoid over the whole map)."""
        return math.log(self.threshold / (1.0 - self.threshold))

    def describe(self) -> dict[str, Any]:
        return {"output": "mask logits (N, 1, H, W)", "defect_if": f"sigmoid(logit) >= {self.threshold}",
                "logit_threshold": self.logit_threshold, "components": f"OpenCV, {self.connectivity}-connected",
                "min_area_px": self.min_area}


@dataclass(frozen=True)
class SegmentationSpec:
    defect_values: tuple[int, ...] | None = None   # mask values that are defects (None: every non-zero value)
    on_size: str = "resize"
    on_missing: str = "defect-free"
    loss: LossWeights = field(default_factory=LossWeights)
    postprocess: PostprocessSpec = field(default_factory=PostprocessSpec)

    @classmethod
    def from_recipe(cls, recipe) -> "SegmentationSpec":
        raw = dict(getattr(recipe, "segmentation", None) or {})
        where = f"{recipe.path}: segmentation"
        try:
            loss = LossWeights(**raw.pop("loss", {}))
            post = PostprocessSpec(**raw.pop("postprocess", {}))
            values = raw.pop("defect_values", None)
            spec = cls(defect_values=tuple(int(v) for v in values) if values else None, loss=loss,
                       postprocess=post, **raw)
        except TypeError as exc:
            raise EdgekitError(f"{where}: {exc}") from None
        if spec.on_size not in ON_SIZE or spec.on_missing not in ON_MISSING:
            raise EdgekitError(f"{where}: on_size must be one of {', '.join(ON_SIZE)} and on_missing one of "
                               f"{', '.join(ON_MISSING)}")
        if not 0.0 < post.threshold < 1.0 or post.min_area < 0 or post.connectivity not in (4, 8):
            raise EdgekitError(f"{where}.postprocess: threshold in (0, 1), min_area >= 0, connectivity 4 or 8")
        return spec
