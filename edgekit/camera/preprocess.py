"""Image pre-processing: one definition, read from the recipe by training, calibration and validation, and
from ``pipeline.json`` by the camera, so the model that is validated sees exactly the pixels the deployed
model sees. numpy and OpenCV alone (Python 3.6+)."""
from typing import List, NamedTuple, Tuple

import cv2
import numpy as np


def opencv_single_threaded() -> None:
    """OpenCV's own thread pool off, in a process that runs the line (or times it as the line runs): its
    frames are small, and the workers OpenCV starts to decode, resize and measure them take cores from the
    model's runtime (2 AVX2 cores, sdc INT8: `edgekit run` 116 fps with the pool, 131 without; bench's end to
    end 124 and 137: docs/history.md, benchmarks/results/line-throughput-sdc-avx2.md)."""
    cv2.setNumThreads(1)


class Preprocess(NamedTuple):
    size: int = 200
    channels: int = 3
    channel_order: str = "bgr"          # order of the replicated/colour channels fed to the net
    scale: float = 1.0                  # multiply the 0..255 pixel values by this first
    mean: Tuple[float, ...] = (104.0, 117.0, 123.0)
    std: Tuple[float, ...] = (1.0, 1.0, 1.0)

    @classmethod
    def from_config(cls, cfg: dict) -> "Preprocess":
        """From a recipe's ``preprocess`` section or ``pipeline.json``'s (lists become tuples); unknown keys
        are a TypeError."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})

    def config(self) -> dict:
        """As YAML and JSON write it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._asdict().items()}

    @property
    def input_shape(self) -> Tuple[int, int, int]:
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

    def batch(self, images: List[np.ndarray]) -> np.ndarray:
        return np.stack([self(im) for im in images])
