"""SSD prior (default) boxes as seeds/000 defines them.

Scale of map p (1-based) of m maps: s_p = s_min + (s_max - s_min)(p - 1)/(m - 1), except the
first map, which takes s_min / 2; the maps after it follow the formula over the remaining m - 1
maps (as SSD does for Conv4_3). Each cell gets one prior per aspect ratio a = w/h with
w = s * sqrt(a), h = s / sqrt(a), centred on the cell. Boxes are (cx, cy, w, h) normalised to the
image, clipped to [0, 1]. Order: map, row, column, aspect ratio (the model's output order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PriorSpec:
    s_min: float = 0.3
    s_max: float = 1.0
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 1.0 / 3.0)
    first_scale: float | None = None    # default s_min / 2
    clip: bool = True

    @classmethod
    def from_config(cls, cfg: dict) -> "PriorSpec":
        ratios = tuple(float(parse_ratio(r)) for r in cfg.get("aspect_ratios", cls.aspect_ratios))
        return cls(float(cfg.get("s_min", cls.s_min)), float(cfg.get("s_max", cls.s_max)), ratios,
                   cfg.get("first_scale"), bool(cfg.get("clip", True)))


def parse_ratio(value: float | int | str) -> float:
    """Aspect ratios may be written ``1/3`` in YAML."""
    if isinstance(value, str) and "/" in value:
        num, den = value.split("/")
        return float(num) / float(den)
    return float(value)


def scales(num_maps: int, spec: PriorSpec) -> list[float]:
    """Prior scale of each map: s_min / 2 first, then s_min .. s_max linearly over the rest."""
    first = spec.first_scale if spec.first_scale is not None else spec.s_min / 2
    rest = num_maps - 1
    if rest == 1:
        return [first, spec.s_min]
    return [first] + [spec.s_min + (spec.s_max - spec.s_min) * (p - 1) / (rest - 1) for p in range(1, rest + 1)]


def make_priors(map_sizes: list[int], spec: PriorSpec) -> np.ndarray:
    """(P, 4) float32 priors (cx, cy, w, h) for square maps of the given sides."""
    out = []
    for size, s in zip(map_sizes, scales(len(map_sizes), spec)):
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        wh = np.array([[s * np.sqrt(a), s / np.sqrt(a)] for a in spec.aspect_ratios])   # (A, 2)
        cells = np.stack([cx, cy], -1).reshape(-1, 1, 2)                                  # (H*W, 1, 2)
        boxes = np.concatenate([np.broadcast_to(cells, (size * size, len(wh), 2)),
                                np.broadcast_to(wh, (size * size, len(wh), 2))], -1)
        out.append(boxes.reshape(-1, 4))
    priors = np.concatenate(out).astype(np.float32)
    if spec.clip:
        priors = np.clip(priors, 0.0, 1.0)
    return priors
