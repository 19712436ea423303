"""The built-in default dataset: procedural NEU-like hot-rolled steel strip images.

Six classes (``NEU_CLASSES``), 200x200 8-bit grey by default, written in the real NEU-DET
layout so the same readers serve built-in and real data::

    <root>/IMAGES/<class>_<n>.png        8-bit single-channel PNG (lossless), n from 1
    <root>/ANNOTATIONS/<class>_<n>.xml   Pascal VOC, one <object> per defect instance
    <root>/MASKS/<class>_<n>.png         8-bit mask: 0 background, class index + 1 on defect pixels
    <root>/synth.json                    generator version, seed, counts, image size, classes

Conventions a reader must know:

- Boxes are VOC-style **1-based inclusive** pixel coordinates: a box ``(xmin, ymin, xmax, ymax)``
  covers the 0-based array slice ``[ymin-1:ymax, xmin-1:xmax]``. Every box is at least two
  pixels wide and high (``xmax > xmin``, ``ymax > ymin``) so no reader drops it as degenerate.
  ``render`` returns boxes in the same convention as the XML files.
- Boxes are computed from each instance's own mask, so every mask pixel lies inside the union
  of the boxes and every box holds mask pixels.
- The rolling direction is the image's vertical (y) axis for every image: rolling marks are
  vertical streaks, and inclusions / rolled-in scale / most scratches are elongated vertically.
- Each image depends only on (seed, class index, n) through
  ``np.random.default_rng([seed, class_index, n])``: generating 50 or 100 per class gives the
  same first 50. Files are byte-identical across runs on the same platform (same OpenCV/zlib);
  floating-point filtering may differ by one grey level across CPU instruction sets.
- A defect's identity lies in its local structure; global brightness and contrast are drawn at
  random per image, so the class is not readable from the mean grey level.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgekit.data.classes import FREE, NEU_CLASSES
from edgekit.errors import EdgekitError
from edgekit.progress import bar

GENERATOR_VERSION = "1"
BOX_CONVENTION = "voc-1based-inclusive"

Box = tuple[int, int, int, int]

_F32 = np.float32


# --------------------------------------------------------------------------- noise helpers
def _unit(field: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (float32)."""
    field = field - field.mean()
    return (field / (field.std() + 1e-6)).astype(_F32)


def _blurred_noise(rng: np.random.Generator, shape: tuple[int, int], sx: float, sy: float | None = None) -> np.ndarray:
    """Gaussian noise smoothed with (anisotropic) Gaussian sigmas, normalised to unit std."""
    n = rng.standard_normal(shape, dtype=_F32)
    return _unit(cv2.GaussianBlur(n, (0, 0), sigmaX=sx, sigmaY=sy if sy is not None else sx,
                                  borderType=cv2.BORDER_REFLECT))


def _lowfreq(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Very smooth field: a cells x cells random grid upsampled with bicubic interpolation."""
    grid = rng.standard_normal((cells, cells), dtype=_F32)
    up = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return _unit(up)


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(_F32)
    return xx, yy


# --------------------------------------------------------------------------- background
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-centred texture of a hot-rolled strip: rolling marks along y, shading, grain."""
    s = size
    # rolling marks: a profile across x (fine streaks + broader bands), nearly constant along y
    fine = cv2.GaussianBlur(rng.standard_normal((1, s), dtype=_F32), (0, 0), sigmaX=rng.uniform(0.7, 1.8))
    broad = cv2.GaussianBlur(rng.standard_normal((1, s), dtype=_F32), (0, 0), sigmaX=rng.uniform(5, 14))
    profile = rng.uniform(1.5, 6.0) * _unit(fine) + rng.uniform(2.0, 8.0) * _unit(broad)
    modulation = 1.0 + 0.35 * _lowfreq(rng, s, int(rng.integers(3, 6)))
    streaks = profile * modulation
    # slow shading
    shading = rng.uniform(3.0, 12.0) * _lowfreq(rng, s, int(rng.integers(2, 5)))
    # grain: isotropic + grain stretched along the rolling direction
    grain = rng.uniform(2.0, 5.0) * _blurred_noise(rng, (s, s), 0.6)
    grain += rng.uniform(1.0, 3.5) * _blurred_noise(rng, (s, s), 0.5, rng.uniform(1.5, 4.0))
    return (streaks + shading + grain).astype(_F32)


# --------------------------------------------------------------------------- instance helpers
def _polarity(rng: np.random.Generator, p_dark: float) -> float:
    return -1.0 if rng.random() < p_dark else 1.0


def _box_of(mask: np.ndarray, size: int) -> Box | None:
    """VOC 1-based inclusive box of a boolean mask, at least 2 px wide/high; None if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    x0, x1, y0, y1 = int(cols[0]) + 1, int(cols[-1]) + 1, int(rows[0]) + 1, int(rows[-1]) + 1
    if x1 == x0:
        x0, x1 = (x0 - 1, x1) if x0 > 1 else (x0, x1 + 1)
    if y1 == y0:
        y0, y1 = (y0 - 1, y1) if y0 > 1 else (y0, y1 + 1)
    return (x0, y0, min(x1, size), min(y1, size))


def _elliptic_radius(xx, yy, cx, cy, a, b, theta) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _rolling_angle(rng: np.random.Generator, spread_deg: float) -> float:
    """Angle (radians, from +x) near the vertical rolling direction."""
    return np.deg2rad(90.0 + rng.normal(0.0, spread_deg))


class _Canvas:
    """Accumulates defect instances: intensity delta, union mask, one box per instance."""

    def __init__(self, size: int):
        self.size = size
        self.delta = np.zeros((size, size), _F32)
        self.mask = np.zeros((size, size), bool)
        self.boxes: list[Box] = []

    def add(self, delta: np.ndarray, mask: np.ndarray, min_pixels: int = 6) -> bool:
        if int(mask.sum()) < min_pixels:
            return False
        box = _box_of(mask, self.size)
        if box is None:
            return False
        self.delta += delta
        self.mask |= mask
        self.boxes.append(box)
        return True


# --------------------------------------------------------------------------- defect classes
def _crazing(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """A network of fine dark cracks over a large area (level lines of a random field)."""
    xx, yy = _coords(s)
    sig = rng.uniform(2.2, 4.5)
    f = _blurred_noise(rng, (s, s), sig * rng.uniform(0.7, 1.0), sig * rng.uniform(1.0, 1.6))
    gy, gx = np.gradient(f)
    dist = np.abs(f) / (np.sqrt(gx * gx + gy * gy) + 1e-3)  # ~ distance to the zero level line
    width = rng.uniform(0.45, 0.9)
    cracks = np.exp(-((dist / width) ** 2))
    # a second, finer and fainter crack family
    f2 = _blurred_noise(rng, (s, s), sig * 0.6)
    g2y, g2x = np.gradient(f2)
    dist2 = np.abs(f2) / (np.sqrt(g2x * g2x + g2y * g2y) + 1e-3)
    cracks = np.maximum(cracks, rng.uniform(0.3, 0.7) * np.exp(-((dist2 / (width * 0.8)) ** 2)))
    strength = np.clip(0.65 + 0.35 * _lowfreq(rng, s, 4), 0.2, 1.0)  # cracks fade in and out
    depth = rng.uniform(18.0, 45.0)
    if rng.random() < 0.35:
        regions = [np.ones((s, s), bool)]
    else:
        regions = []
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(0.2, 0.8, 2) * s
            a, b = rng.uniform(0.25, 0.55, 2) * s
            env = _elliptic_radius(xx, yy, cx, cy, a, b, rng.uniform(0, np.pi))
            regions.append(env + 0.25 * _lowfreq(rng, s, 5) < 1.0)
    painted = np.zeros((s, s), bool)  # overlapping regions darken their shared cracks once
    for region in regions:
        inst = cracks * strength * region
        if cv.add(-depth * inst * (~painted), inst > 0.45, min_pixels=40):
            painted |= region


def _inclusion(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """Elongated dark (sometimes bright) spots or strips roughly along the rolling direction."""
    for _ in range(int(rng.integers(1, 6))):
        layer = np.zeros((s, s), _F32)
        theta = _rolling_angle(rng, 7.0)
        length = rng.uniform(0.1, 0.55) * s
        width = rng.uniform(2.0, 5.0)
        cx, cy = rng.uniform(0.08, 0.92, 2) * s
        pieces = int(rng.integers(1, 5))
        for k in range(pieces):  # a chain of elongated spots along the axis
            t = (k - (pieces - 1) / 2) * length / max(pieces, 1) * rng.uniform(0.8, 1.2)
            px = cx + t * np.cos(theta) + rng.normal(0, width * 0.6)
            py = cy + t * np.sin(theta) + rng.normal(0, width * 0.6)
            half_len = length / (2 * pieces) * rng.uniform(0.6, 1.2)
            half_w = width * rng.uniform(0.5, 1.2)
            cv2.ellipse(layer, (int(round(px * 4)), int(round(py * 4))),
                        (max(1, int(round(half_len * 4))), max(1, int(round(half_w * 4)))),
                        float(np.rad2deg(theta)), 0, 360, 1.0, -1, cv2.LINE_AA, shift=2)
        mask = layer > 0.5
        texture = 0.75 + 0.25 * _blurred_noise(rng, (s, s), 1.2)
        soft = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.6, 1.2))
        depth = rng.uniform(30.0, 70.0) * _polarity(rng, 0.8)
        cv.add(depth * soft * texture, mask)


def _patches(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """Large irregular dark (sometimes bright) blotches."""
    xx, yy = _coords(s)
    sign = _polarity(rng, 0.75)
    rough = _blurred_noise(rng, (s, s), rng.uniform(3.0, 7.0))  # ragged outlines
    inside = 0.7 + 0.3 * _blurred_noise(rng, (s, s), rng.uniform(2.0, 4.0))  # blotchy interior
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0.15, 0.85, 2) * s
        a, b = rng.uniform(0.1, 0.3, 2) * s
        r = _elliptic_radius(xx, yy, cx, cy, a, b, rng.uniform(0, np.pi))
        mask = (r + 0.3 * rough) < 1.0
        body = np.clip(1.2 - r, 0.0, 1.0) ** 0.6  # the intensity fades towards the edge
        layer = cv2.GaussianBlur(mask.astype(_F32) * body * inside, (0, 0), rng.uniform(1.5, 3.5))
        cv.add(sign * rng.uniform(25.0, 60.0) * layer, mask, min_pixels=60)


def _pitted_surface(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """Clusters of small dark pits."""
    for _ in range(int(rng.integers(1, 4))):
        layer = np.zeros((s, s), _F32)
        cx, cy = rng.uniform(0.12, 0.88, 2) * s
        spread = rng.uniform(0.04, 0.2) * s
        count = int(rng.integers(20, 110))
        pts = rng.normal(0.0, spread, (count, 2)) * rng.uniform(0.6, 1.4, 2) + (cx, cy)
        radii = rng.uniform(0.9, 3.2, count)
        depths = rng.uniform(0.5, 1.0, count)
        for (px, py), rad, d in zip(pts, radii, depths):
            if 0 <= px < s and 0 <= py < s:
                cv2.circle(layer, (int(round(px * 4)), int(round(py * 4))), max(2, int(round(rad * 4))),
                           float(d), -1, cv2.LINE_AA, shift=2)
        mask = layer > 0.3
        soft = cv2.GaussianBlur(layer, (0, 0), 0.6)
        cv.add(-rng.uniform(28.0, 70.0) * soft, mask, min_pixels=8)


def _rolled_in_scale(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """Scattered flaky scale islands, their texture elongated along the rolling direction."""
    texture = 0.7 + 0.3 * _blurred_noise(rng, (s, s), 0.7, 2.5)  # streaks along y inside flakes
    for _ in range(int(rng.integers(1, 4))):
        layer = np.zeros((s, s), _F32)
        cx, cy = rng.uniform(0.15, 0.85, 2) * s
        ax, ay = rng.uniform(0.12, 0.35) * s, rng.uniform(0.18, 0.45) * s
        count = int(rng.integers(25, 90))
        # each flake: an irregular 7-gon, elongated along the rolling direction
        px = cx + rng.normal(0, ax * 0.6, (count, 1))
        py = cy + rng.normal(0, ay * 0.6, (count, 1))
        length, width = rng.uniform(5.0, 18.0, (count, 1)), rng.uniform(2.0, 6.0, (count, 1))
        ang = np.sort(rng.uniform(0, 2 * np.pi, (count, 7)), axis=1)
        rad = rng.uniform(0.55, 1.0, (count, 7))
        theta = np.deg2rad(90.0 + rng.normal(0.0, 10.0, (count, 1)))
        shade = rng.uniform(0.6, 1.0, count)
        u, v = rad * np.cos(ang) * length / 2, rad * np.sin(ang) * width / 2
        vx = px + u * np.cos(theta) - v * np.sin(theta)
        vy = py + u * np.sin(theta) + v * np.cos(theta)
        polys = np.round(np.stack([vx, vy], 2) * 4).astype(np.int32)
        for poly, value in zip(polys, shade):
            cv2.fillPoly(layer, [poly], float(value), cv2.LINE_AA, shift=2)
        mask = layer > 0.3
        soft = cv2.GaussianBlur(layer, (0, 0), 0.7)
        delta = -rng.uniform(25.0, 60.0) * soft * texture
        if rng.random() < 0.5:  # bright rims around some islands
            rim = cv2.GaussianBlur(layer, (0, 0), 2.0) - soft
            delta += rng.uniform(10.0, 25.0) * np.clip(rim, 0, None)
        cv.add(delta, mask)


def _scratches(rng: np.random.Generator, s: int, cv: _Canvas) -> None:
    """Long thin bright or dark lines, mostly near the rolling direction."""
    sign = _polarity(rng, 0.4)
    base_theta = _rolling_angle(rng, 8.0) if rng.random() < 0.8 else rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(1, 4))):
        layer = np.zeros((s, s), _F32)
        theta = base_theta + np.deg2rad(rng.normal(0, 4.0))
        length = rng.uniform(0.35, 1.3) * s
        cx, cy = rng.uniform(0.1, 0.9, 2) * s
        n_pts = 6
        t = np.linspace(-length / 2, length / 2, n_pts)
        bend = np.cumsum(rng.normal(0, 1.2, n_pts))
        bend -= bend.mean()
        px = cx + t * np.cos(theta) - bend * np.sin(theta)
        py = cy + t * np.sin(theta) + bend * np.cos(theta)
        pts = np.round(np.stack([px, py], 1) * 4).astype(np.int32)
        thick = int(rng.integers(1, 4))
        cv2.polylines(layer, [pts], False, 1.0, thick, cv2.LINE_AA, shift=2)
        mask = layer > 0.4
        along = np.clip(0.7 + 0.4 * _lowfreq(rng, s, 6), 0.25, 1.0)  # fading along the line
        soft = cv2.GaussianBlur(layer, (0, 0), 0.5)
        cv.add(sign * rng.uniform(25.0, 60.0) * soft * along, mask)


_RENDERERS = {
    "crazing": _crazing,
    "inclusion": _inclusion,
    "patches": _patches,
    "pitted_surface": _pitted_surface,
    "rolled-in_scale": _rolled_in_scale,
    "scratches": _scratches,
}


def render_free(rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """A defect-free surface: the same background, brightness and contrast as the defect classes'."""
    background = _background(rng, size)
    image = rng.uniform(70.0, 185.0) + rng.uniform(0.7, 1.4) * background
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render(cls: str, rng: np.random.Generator, size: int = 200) -> tuple[np.ndarray, list[Box], np.ndarray]:
    """Render one sample of class ``cls``.

    Returns ``(image uint8 HxW, boxes, mask uint8 HxW)``: boxes are VOC 1-based inclusive
    ``(xmin, ymin, xmax, ymax)``, one per defect instance; the mask holds class index + 1 on
    defect pixels and 0 elsewhere.
    """
    if cls not in _RENDERERS:
        raise EdgekitError(f"synth: unknown class {cls!r} (known: {', '.join(NEU_CLASSES)})")
    if size < 32:
        raise EdgekitError(f"synth: image size {size} is too small (minimum 32)")
    cv = _Canvas(size)
    background = _background(rng, size)
    for _ in range(20):  # redraw until at least one instance lands in the image
        _RENDERERS[cls](rng, size, cv)
        if cv.boxes:
            break
    if not cv.boxes:  # pragma: no cover - practically unreachable
        raise EdgekitError(f"synth: could not place a {cls} defect in a {size}x{size} image")
    brightness = rng.uniform(70.0, 185.0)
    contrast = rng.uniform(0.7, 1.4)
    image = brightness + contrast * (background + cv.delta)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    mask = np.where(cv.mask, NEU_CLASSES.index(cls) + 1, 0).astype(np.uint8)
    return image, cv.boxes, mask


# --------------------------------------------------------------------------- files
def voc_xml(filename: str, cls: str, boxes: list[Box], size: int, folder: str = "IMAGES") -> str:
    """The VOC annotation text in the real NEU-DET form."""
    objects = "".join(
        "\t<object>\n"
        f"\t\t<name>{cls}</name>\n"
        "\t\t<pose>Unspecified</pose>\n"
        "\t\t<truncated>0</truncated>\n"
        "\t\t<difficult>0</difficult>\n"
        "\t\t<bndbox>\n"
        f"\t\t\t<xmin>{x0}</xmin>\n"
        f"\t\t\t<ymin>{y0}</ymin>\n"
        f"\t\t\t<xmax>{x1}</xmax>\n"
        f"\t\t\t<ymax>{y1}</ymax>\n"
        "\t\t</bndbox>\n"
        "\t</object>\n"
        for x0, y0, x1, y1 in boxes
    )
    return (
        "<annotation>\n"
        f"\t<folder>{folder}</folder>\n"
        f"\t<filename>{filename}</filename>\n"
        "\t<source>\n"
        "\t\t<database>edgekit-synth</database>\n"
        "\t</source>\n"
        "\t<size>\n"
        f"\t\t<width>{size}</width>\n"
        f"\t\t<height>{size}</height>\n"
        "\t\t<depth>1</depth>\n"
        "\t</size>\n"
        "\t<segmented>0</segmented>\n"
        f"{objects}"
        "</annotation>\n"
    )


def _write_png(path: Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:  # pragma: no cover
        raise EdgekitError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def sample_rng(seed: int, class_index: int, n: int) -> np.random.Generator:
    """The generator of image ``n`` (1-based) of class ``class_index``: depends on nothing else."""
    return np.random.default_rng([seed, class_index, n])


def generate(
    root: Path,
    per_class: int = 100,
    seed: int = 0,
    size: int = 200,
    progress: bool = True,
    overwrite: bool = False,
    free: int = 0,
) -> Path:
    """Write the synthetic dataset to ``root`` (NEU-DET layout) and return ``root``.

    ``free`` adds that many defect-free images (``free_<n>.png``, empty masks, no annotation file): a
    group of their own for the mask readers, for recipes that decide defective or not. The data are
    written to a temporary sibling folder and renamed into place, so a crash never
    leaves a half-written dataset. A non-empty existing ``root`` is refused unless ``overwrite``.
    """
    root = Path(root)
    if not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise EdgekitError(f"{root}: per_class must be a positive integer, got {per_class!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EdgekitError(f"{root}: seed must be a non-negative integer, got {seed!r}")
    if size < 32:
        raise EdgekitError(f"{root}: image size {size} is too small (minimum 32)")
    if root.exists() and not root.is_dir():
        raise EdgekitError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise EdgekitError(f"{root}: folder exists and is not empty (pass overwrite to replace it)")
    root.parent.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        for sub in ("IMAGES", "ANNOTATIONS", "MASKS"):
            (tmp / sub).mkdir()
        jobs = [(ci, cls, n) for ci, cls in enumerate(NEU_CLASSES) for n in range(1, per_class + 1)]
        for ci, cls, n in bar(jobs, desc="synth", enabled=progress):
            image, boxes, mask = render(cls, sample_rng(int(seed), ci, n), size)
            stem = f"{cls}_{n}"
            _write_png(tmp / "IMAGES" / f"{stem}.png", image)
            _write_png(tmp / "MASKS" / f"{stem}.png", mask)
            (tmp / "ANNOTATIONS" / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", cls, boxes, size))
        for n in bar(range(1, free + 1), desc="synth (defect-free)", enabled=progress and free > 0):
            image = render_free(sample_rng(int(seed), len(NEU_CLASSES), n), size)
            _write_png(tmp / "IMAGES" / f"{FREE}_{n}.png", image)
            _write_png(tmp / "MASKS" / f"{FREE}_{n}.png", np.zeros_like(image))
        meta = {
            "generator": "edgekit-synth",
            "version": GENERATOR_VERSION,
            "seed": int(seed),
            "per_class": {cls: int(per_class) for cls in NEU_CLASSES},
            "image_size": [int(size), int(size)],
            "classes": list(NEU_CLASSES),
            "box_convention": BOX_CONVENTION,
            "mask_values": {cls: i + 1 for i, cls in enumerate(NEU_CLASSES)},
            **({"defect_free": int(free)} if free else {}),
        }
        (tmp / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "data")
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
