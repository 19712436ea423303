"""TensorRT versions as numbers: comparisons, the integer TensorRT writes into calibration caches,
and what each JetPack ships."""
import re
from typing import NamedTuple

from edgekit.errors import EdgekitError

_DOTTED = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")

# JetPack release -> the TensorRT it ships (NVIDIA's JetPack release notes).
JETPACK_TENSORRT = {
    "4.6": "8.0.1", "4.6.1": "8.2.1", "4.6.2": "8.2.1", "4.6.3": "8.2.1", "4.6.4": "8.2.1",
    "4.6.5": "8.2.1", "4.6.6": "8.2.1", "5.0.2": "8.4.1", "5.1": "8.5.2", "5.1.1": "8.5.2",
    "5.1.2": "8.5.2", "5.1.3": "8.5.2", "5.1.4": "8.5.2", "5.1.5": "8.5.2", "6.0": "8.6.2",
    "6.1": "10.3.0", "6.2": "10.3.0", "6.2.1": "10.3.0",
}

# JetPack major.minor -> the Python its Ubuntu ships (18.04, 20.04, 22.04), which TensorRT's bindings
# (python3-libnvinfer) are built for: the device-side code must run on the oldest.
JETPACK_PYTHON = {"4.6": "3.6", "5.0": "3.8", "5.1": "3.8", "6.0": "3.10", "6.1": "3.10", "6.2": "3.10"}


def jetpack_python(jetpack: str) -> str:
    """The Python a JetPack release ships (``"4.6.4"`` -> ``"3.6"``)."""
    return JETPACK_PYTHON[".".join(jetpack.split(".")[:2])]


class TrtVersion(NamedTuple):
    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "TrtVersion":
        """``"8.2.1.8"``, ``"10.3.0.30"``, ``"8.6"`` -> a version (the build number is dropped)."""
        m = _DOTTED.match(str(text))
        if not m:
            raise EdgekitError(f"not a TensorRT version: {text!r}")
        return cls(*(int(g) if g else 0 for g in m.groups()))

    @property
    def number(self) -> int:
        """``NV_TENSORRT_VERSION``: major*1000+minor*100+patch up to 8.x, major*10000+... from 9 on.
        TensorRT writes it into the calibration-cache header (``TRT-8201-...``, ``TRT-100300-...``)."""
        scale = 1000 if self.major < 9 else 10000
        return self.major * scale + self.minor * 100 + self.patch

    def at_least(self, major: int, minor: int = 0) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

