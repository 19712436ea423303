"""Reading and checking images, with errors that name the file.

OpenCV decodes images for the pipeline, but it returns a grey-filled picture for a truncated
JPEG without a word; Pillow (with truncated images refused, its default) checks every file
when a data set is indexed, so a damaged file is named before any work is spent on it.
"""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.errors import EdgekitError

# Our own errors name the file; OpenCV's decoder chatter on stderr would only bury them.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MAGIC = ((b"\xff\xd8", "JPEG"), (b"\x89PNG", "PNG"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def check_image(path: Path, data: bytes) -> tuple[int, int]:
    """Decode ``data`` (the bytes of ``path``) completely; (width, height), or an error naming the file
    for an empty, truncated, corrupt or non-image file."""
    if not data:
        raise EdgekitError(f"{path}: empty image file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.size
    except UnidentifiedImageError:
        kind = next((k for magic, k in MAGIC if data.startswith(magic)), None)
        if kind:
            raise EdgekitError(f"{path}: corrupt image (a {kind} header, then unreadable data)") from None
        raise EdgekitError(f"{path}: not an image (no known image format in its bytes)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).split(" (")[0] or exc.__class__.__name__
        raise EdgekitError(f"{path}: corrupt image ({reason})") from None


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
