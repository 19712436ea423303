"""Pascal VOC XML annotations, with errors that name the file."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Box:
    label: int
    xmin: float
    ymin: float
    xmax: float
    ymax: float


def read_voc(path: Path, classes: tuple[str, ...]) -> tuple[list[Box], int]:
    """Parse one VOC file. Returns the boxes and the number of degenerate boxes dropped.

    Raises EdgekitError for malformed XML, a missing field, or a class not in ``classes``.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise EdgekitError(f"{path}: malformed XML ({exc})") from exc
    except OSError as exc:
        raise EdgekitError(f"{path}: cannot read ({exc.strerror})") from exc
    index = {c: i for i, c in enumerate(classes)}
    boxes: list[Box] = []
    dropped = 0
    for n, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            raise EdgekitError(f"{path}: object {n} has unknown class {name!r} (known: {', '.join(classes)})")
        bb = obj.find("bndbox")
        if bb is None:
            raise EdgekitError(f"{path}: object {n} has no <bndbox>")
        try:
            coords = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (TypeError, ValueError) as exc:
            raise EdgekitError(f"{path}: object {n} has a missing or non-numeric box coordinate") from exc
        if coords[2] <= coords[0] or coords[3] <= coords[1]:
            dropped += 1
            continue
        boxes.append(Box(index[name], *coords))
    return boxes, dropped
