"""Training augmentation: detection's flips, crops and noise (seeds/000), and the robustness augmentation a
classifier may train with (the line's lighting, camera noise and strip motion).

Works on the raw grey image before pre-processing (which resizes to the network input), with
boxes as normalised corners. Every draw comes from the caller's generator, so an epoch's
augmentation is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.data import robustness


def _from_config(cls, cfg: dict | bool | None):
    """A recipe's augmentation entry: false / absent -> None, true -> the defaults, a mapping -> those fields."""
    if not cfg:
        return None
    if cfg is True:
        return cls()
    unknown = set(cfg) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown augmentation option(s): {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.5          # probability of a horizontal flip
    vflip: float = 0.5          # probability of a vertical flip (a strip's surface has no up or down)
    crop: float = 0.5           # probability of a random crop
    crop_min_scale: float = 0.5  # smallest crop side, as a fraction of the image side
    noise: float = 0.5          # probability of additive Gaussian noise
    noise_max_sigma: float = 8.0  # grey levels

    @classmethod
    def from_config(cls, cfg: dict | bool | None) -> "AugmentConfig | None":
        return _from_config(cls, cfg)


def random_crop(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                min_scale: float, tries: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop a random window holding the centre of at least one box; boxes are clipped to it."""
    h, w = image.shape[:2]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for _ in range(tries):
        sw, sh = rng.uniform(min_scale, 1.0, 2)
        x0, y0 = rng.uniform(0, 1 - sw), rng.uniform(0, 1 - sh)
        inside = ((centres[:, 0] > x0) & (centres[:, 0] < x0 + sw) & (centres[:, 1] > y0)
                  & (centres[:, 1] < y0 + sh))
        if not inside.any():
            continue
        px0, py0 = int(round(x0 * w)), int(round(y0 * h))
        px1, py1 = max(px0 + 2, int(round((x0 + sw) * w))), max(py0 + 2, int(round((y0 + sh) * h)))
        window = np.array([px0 / w, py0 / h, px1 / w, py1 / h])
        kept = boxes[inside]
        kept = np.concatenate([np.maximum(kept[:, :2], window[:2]), np.minimum(kept[:, 2:], window[2:])], 1)
        scale = np.tile(window[2:] - window[:2], 2)
        kept = (kept - np.tile(window[:2], 2)) / scale
        return image[py0:py1, px0:px1], kept.astype(np.float32), labels[inside]
    return image, boxes, labels


def augment(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
            cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 HxW image, (n, 4) normalised corner boxes, (n,) labels -> augmented copies."""
    boxes = boxes.copy()
    if rng.random() < cfg.hflip:
        image = image[:, ::-1]
        boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
    if rng.random() < cfg.vflip:
        image = image[::-1]
        boxes[:, [1, 3]] = 1.0 - boxes[:, [3, 1]]
    if len(boxes) and rng.random() < cfg.crop:
        image, boxes, labels = random_crop(image, boxes, labels, rng, cfg.crop_min_scale)
    if rng.random() < cfg.noise:
        sigma = rng.uniform(0, cfg.noise_max_sigma)
        image = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image), boxes, labels


@dataclass(frozen=True)
class RobustConfig:
    """Degradations drawn from ranges wider than seeds/002's test conditions (illumination +-0.4 / +-1,
    20 / 35 dB, blur 2 / 5 px), each applied with probability ``p``, by the same code that makes the test
    conditions (``edgekit.data.robustness``) but on training images only."""
    p: float = 0.5                      # probability of each degradation, drawn independently
    illumination: float = 1.2           # gain-field luminance range alpha drawn from U(0, this)
    snr_db: tuple[float, float] = (15.0, 45.0)   # camera noise SNR drawn from this range (dB, eq. 5)
    blur: float = 7.0                   # motion-blur length drawn from U(1, this) px, at a random angle

    @classmethod
    def from_config(cls, cfg: dict | bool | None) -> "RobustConfig | None":
        out = _from_config(cls, cfg)
        if out and (not 0 < out.p <= 1 or out.illumination < 0 or out.blur < 1 or out.snr_db[0] > out.snr_db[1]):
            raise ValueError(f"robustness augmentation out of range: {cfg}")
        return out


def degrade(image: np.ndarray, rng: np.random.Generator, cfg: RobustConfig) -> np.ndarray:
    """One training image (uint8) under a random draw of illumination, noise and motion blur."""
    if rng.random() < cfg.p:
        image = robustness.illuminate(image, rng.uniform(0.0, cfg.illumination), rng)
    if rng.random() < cfg.p:
        image = robustness.motion_blur(image, rng.uniform(1.0, cfg.blur), rng.uniform(0.0, 360.0))
    if rng.random() < cfg.p:
        image = robustness.add_noise(image, rng.uniform(*cfg.snr_db), rng)
    return image
