"""Image pre-processing shared by training, calibration, validation and the line-side runtime.

One definition, read from the recipe, so the model that is validated sees exactly the pixels
the deployed model sees.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class Preprocess:
    size: int = 200
    channels: int = 3
    channel_order: str = "bgr"          # order of the replicated/colour channels fed to the net
    scale: float = 1.0                  # multiply the 0..255 pixel values by this first
    mean: tuple[float, ...] = field(default=(104.0, 117.0, 123.0))
    std: tuple[float, ...] = field(default=(1.0, 1.0, 1.0))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 HxW (grey) or HxWx3 (BGR, as OpenCV reads) -> float32 CxHxW."""
        if image.shape[:2] != (self.size, self.size):
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        if image.ndim == 2:
            image = image[:, :, None]
        if self.channels == 1 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
        elif self.channels == 3 and image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        elif self.channels == 3 and self.channel_order == "rgb":
            image = image[:, :, ::-1]
        x = image.astype(np.float32) * self.scale
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def batch(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([self(im) for im in images])
