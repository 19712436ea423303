"""Pascal VOC XML annotations, read by the devkit's conventions, with errors that name the file.

Coordinates are 1-based inclusive pixel indices (the devkit's and NEU-DET's): a box with
``xmax == xmin`` is one pixel wide and is kept. ``<difficult>1</difficult>`` objects are read
and marked; the evaluation leaves them out of recall and ignores detections that match them.
A box that is inverted or lies outside its image is an error, never silently dropped.
"""
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
    difficult: bool = False


def _flag(obj: ET.Element, tag: str, path: Path, n: int) -> bool:
    text = (obj.findtext(tag) or "0").strip()
    if text not in ("0", "1"):
        raise EdgekitError(f"{path}: object {n} has <{tag}>{text}</{tag}> (expected 0 or 1)")
    return text == "1"


def read_voc(path: Path, classes: tuple[str, ...], size: tuple[int, int] | None = None) -> list[Box]:
    """Parse one VOC file; ``size`` (width, height) of the image the boxes must lie in.

    Raises EdgekitError for malformed XML, a missing field, a class not in ``classes``, an
    inverted box, or a box outside the image (0-based tools' ``xmin = 0`` is accepted).
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise EdgekitError(f"{path}: malformed XML ({exc})") from exc
    except OSError as exc:
        raise EdgekitError(f"{path}: cannot read ({exc.strerror})") from exc
    if root.tag != "annotation":
        raise EdgekitError(f"{path}: not a Pascal VOC annotation (root element <{root.tag}>)")
    index = {c: i for i, c in enumerate(classes)}
    boxes: list[Box] = []
    for n, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            raise EdgekitError(f"{path}: object {n} has unknown class {name!r} (known: {', '.join(classes)})")
        bb = obj.find("bndbox")
        if bb is None:
            raise EdgekitError(f"{path}: object {n} has no <bndbox>")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise EdgekitError(f"{path}: object {n} has a missing or non-numeric box coordinate") from None
        if x1 < x0 or y1 < y0:
            raise EdgekitError(f"{path}: object {n} box is inverted (xmin {x0:g} > xmax {x1:g} or "
                               f"ymin {y0:g} > ymax {y1:g})")
        if size is not None:
            w, h = size
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                raise EdgekitError(f"{path}: object {n} box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside "
                                   f"the {w}x{h} image")
        boxes.append(Box(index[name], x0, y0, x1, y1, _flag(obj, "difficult", path, n)))
    return boxes
