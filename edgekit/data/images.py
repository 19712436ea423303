"""Reading images with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgekit.errors import EdgekitError

# Our own errors name the file; OpenCV's decoder chatter on stderr would only bury them.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_grey(path: Path) -> np.ndarray:
    """Read an image as uint8 HxW. NEU images are grey stored as 1- or 3-channel files."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise EdgekitError(f"{path}: image file not found")
    if data.size == 0:
        raise EdgekitError(f"{path}: empty image file")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise EdgekitError(f"{path}: corrupt or unsupported image (OpenCV cannot decode it)")
    return image
