"""TensorRT's calibration cache, written from edgekit's own calibration run.

TensorRT 8.x's implicit INT8 (``IInt8EntropyCalibrator2``, the only INT8 route on TensorRT 8.2) reads
a text file: a header ``TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2``, then one
``<tensor name>: <scale>`` line per tensor, the scale (amax / 127) written as the 8 hex digits of its
big-endian IEEE-754 float32. TensorRT only accepts a cache whose header names its own version.

The scales come from the same activation ranges that made the explicit Q/DQ ONNX (:mod:`.scales`, on the
host), so the implicit and explicit engines quantize alike. Reading, writing and re-heading a cache (what a
device does with a kit's) needs no onnx.
"""
from typing import Dict, Optional, Tuple
import re
import struct
from pathlib import Path

from edgekit.artifacts import atomic_write_text
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.errors import EdgekitError

ALGORITHM = "EntropyCalibration2"
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{1,8})$")


def header(version: TrtVersion) -> str:
    return f"TRT-{version.number}-{ALGORITHM}"


def render(scales: Dict[str, float], version: TrtVersion) -> str:
    lines = [header(version)]
    for name, scale in scales.items():
        if ":" in name or "\n" in name:
            raise EdgekitError(f"tensor name {name!r} cannot be written to a TensorRT calibration cache")
        lines.append(f"{name}: {struct.pack('>f', scale).hex()}")
    return "\n".join(lines) + "\n"


def write(scales: Dict[str, float], version: TrtVersion, path: Path) -> Path:
    atomic_write_text(Path(path), render(scales, version))
    return Path(path)


def read(path: Path) -> Tuple[Optional[TrtVersion], str, Dict[str, float]]:
    """(TensorRT version of the header, algorithm, scales) of a cache file."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: cannot read calibration cache ({exc})") from exc
    m = _HEADER.match(lines[0].strip()) if lines else None
    if not m:
        raise EdgekitError(f"{path}: line 1 is not a TensorRT calibration-cache header (TRT-<version>-<algorithm>)")
    number = int(m.group(1))
    scale = 1000 if number < 9000 else 10000
    version = TrtVersion(number // scale, number % scale // 100, number % 100)
    scales = {}
    for i, line in enumerate(lines[1:], start=2):
        lm = _LINE.match(line.strip())
        if not lm:
            raise EdgekitError(f"{path}: line {i}: expected '<tensor>: <hex float32>', got {line[:80]!r}")
        scales[lm.group(1)] = struct.unpack(">f", bytes.fromhex(lm.group(2).zfill(8)))[0]
    return version, m.group(2), scales
