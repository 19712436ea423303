"""Deployment targets: what a device can run, as data (``targets/<name>.yaml``).

A target says which backend builds for it (and which one stands in when that backend cannot run
here), the GPU's compute capability, the JetPack and TensorRT versions it ships, the precisions
that are fast on it, how INT8 reaches it (explicit Q/DQ or the old calibration cache), its DLA
cores, memory, TensorRT workspace and the data-sheet peak throughput used for estimates.
"""
from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import EdgekitError
from edgekit.resources import bundled_dir

KINDS = ("jetson", "cuda", "cpu")
BACKENDS = ("tensorrt", "openvino", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "int8")
INT8_ROUTES = ("qdq", "calibration-cache", "none")
PEAK_FIELDS = ("fp32_tflops", "fp16_tflops", "int8_tops", "dla_int8_tops")
REQUIRED = ("name", "description", "kind", "backend", "fallback", "compute_capability", "gpu", "jetpack",
            "tensorrt", "precisions", "int8_route", "dla_cores", "memory_gb", "workspace_mb", "peak",
            "power_modes")
OPTIONAL = ("aliases", "cpu_isa")
# x86 instruction sets a cpu target may assume (Linux /proc/cpuinfo flag names): they decide the INT8
# encoding (without VNNI, 8-bit weights are reduced to 7 bits) and whether FP16 artifacts compute in bf16
CPU_ISA = ("avx2", "fma", "avx512f", "avx_vnni", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon")
VNNI = {"avx_vnni", "avx512_vnni", "amx_int8"}
BF16 = {"avx512_bf16", "amx_bf16"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_VERSION = re.compile(r"^\d+(\.\d+)*(\.(x|\*))?$")
_CC = re.compile(r"^\d+\.\d+$")
_LEADING_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def _parts(version: str) -> tuple[int, ...]:
    """``"10.3.x"`` -> ``(10, 3)``: the numeric components before any wildcard."""
    out = []
    for piece in version.split("."):
        if piece in ("x", "*"):
            break
        out.append(int(piece))
    return tuple(out)


def _pad(parts: tuple[int, ...], n: int) -> tuple[int, ...]:
    return parts + (0,) * (n - len(parts))


@dataclass(frozen=True)
class VersionRange:
    """Inclusive range of dotted versions. ``max`` is a prefix: ``"10.3"`` takes in every 10.3.*,
    ``"11.x"`` and ``"11"`` every 11.*. ``None`` leaves that end open."""

    min: str | None = None
    max: str | None = None

    def contains(self, version: str) -> bool:
        """Whether ``version`` (``"10.3.0.30"``, or a package version like ``"8.5.2-1+cuda11.4"``,
        compared by its leading dotted number) lies in the range, comparing numerically."""
        m = _LEADING_VERSION.match(str(version))
        if not m:
            raise ValueError(f"not a dotted version: {version!r}")
        v = tuple(int(p) for p in m.group(1).split("."))
        if self.min is not None:
            lo = _parts(self.min)
            n = max(len(lo), len(v))
            if _pad(v, n) < _pad(lo, n):
                return False
        if self.max is not None:
            hi = _parts(self.max)
            if hi:  # a bare "x" bounds nothing
                head = v[: len(hi)]
                if _pad(head, len(hi)) > hi:
                    return False
        return True

    def __str__(self) -> str:
        if self.min == self.max and self.min is not None:
            return self.min
        return f"{self.min or '*'}..{self.max or '*'}"


@dataclass(frozen=True)
class Peak:
    """Dense peak throughput from the vendor's data sheet (per core for CPU targets); None: not available."""

    fp32_tflops: float | None
    fp16_tflops: float | None
    int8_tops: float | None
    dla_int8_tops: float | None


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    aliases: tuple[str, ...]
    kind: str                      # jetson | cuda | cpu
    backend: str                   # tensorrt | openvino | onnxruntime
    fallback: str | None           # backend used where the default cannot build/run
    compute_capability: str | None
    gpu: str | None
    jetpack: VersionRange | None
    tensorrt: VersionRange | None
    precisions: tuple[str, ...]
    int8_route: str                # qdq | calibration-cache | none
    dla_cores: int
    memory_gb: float
    workspace_mb: int
    peak: Peak
    power_modes: tuple[str, ...]
    path: Path
    cpu_isa: tuple[str, ...] = ()  # cpu targets: the instruction sets assumed (CPU_ISA)

    @property
    def int8_dot(self) -> bool:
        """Whether the CPU multiplies 8-bit values without saturating 16-bit sums (VNNI, AMX): without
        it, ONNX Runtime and OpenVINO advise 7-bit weights (``reduce_range``)."""
        return self.kind != "cpu" or bool(VNNI & set(self.cpu_isa))

    @property
    def bf16(self) -> bool:
        """Whether the CPU computes in bf16 (AVX512-BF16, AMX): its half-precision artifact runs in bf16."""
        return self.kind == "cpu" and bool(BF16 & set(self.cpu_isa))

    @property
    def sparse_tensor_cores(self) -> bool:
        """Whether the GPU runs 2:4 sparse weights on Sparse Tensor Cores (Ampere, compute capability 8.0, and
        newer: Jetson Orin, RTX 30xx/A-series on; not Xavier's Volta nor Nano's Maxwell)."""
        if self.kind == "cpu" or not self.compute_capability:
            return False
        major, minor = (int(x) for x in self.compute_capability.split("."))
        return (major, minor) >= (8, 0)

    def supports(self, precision: str) -> bool:
        """Whether ``precision`` is listed as fast here and, for INT8, has a route."""
        return precision in self.precisions and not (precision == "int8" and self.int8_route == "none")

    def details(self) -> dict[str, str]:
        """Every field of the target, as ``edgekit targets NAME`` shows it."""
        peak = ", ".join(f"{k} {getattr(self.peak, k):g}" for k in PEAK_FIELDS if getattr(self.peak, k) is not None)
        return {
            "name": self.name, "description": self.description, "aliases": ", ".join(self.aliases) or "-",
            "kind": self.kind, "backend": self.backend, "fallback": self.fallback or "-",
            "gpu": self.gpu or "-", "compute capability": self.compute_capability or "-",
            "JetPack": str(self.jetpack) if self.jetpack else "-", "TensorRT": str(self.tensorrt) if self.tensorrt else "-",
            "precisions": ", ".join(self.precisions), "INT8 route": self.int8_route, "DLA cores": str(self.dla_cores),
            "memory GB": f"{self.memory_gb:g}", "workspace MB": str(self.workspace_mb), "peak": peak or "-",
            "power modes": ", ".join(self.power_modes) or "-",
            "CPU instruction sets": ", ".join(self.cpu_isa) or "-",
            "file": str(self.path),
        }

    def summary_row(self) -> dict[str, Any]:
        """One row of ``edgekit targets``: plain strings and numbers, JSON-ready."""
        int8 = self.peak.int8_tops
        if int8 is not None and self.peak.dla_int8_tops:
            int8_txt = f"{int8:g} + DLA {self.peak.dla_int8_tops:g}"
        else:
            int8_txt = "-" if int8 is None else f"{int8:g}"
        if self.kind == "cpu" and int8 is not None:
            int8_txt += " /core"
        return {
            "name": self.name,
            "kind": self.kind,
            "backend": self.backend,
            "fallback": self.fallback or "-",
            "cc": self.compute_capability or "-",
            "tensorrt": str(self.tensorrt) if self.tensorrt else "-",
            "precisions": ",".join(self.precisions),
            "dla": self.dla_cores,
            "memory_gb": int(self.memory_gb) if float(self.memory_gb).is_integer() else self.memory_gb,
            "peak_int8_tops": int8_txt,
        }


# --------------------------------------------------------------------------- locating the files

def targets_dir() -> Path:
    """The bundled ``targets/`` folder (installed package data, or the source checkout's)."""
    return bundled_dir("edgekit._targets", "targets")


# --------------------------------------------------------------------------- parsing and checking

def _fail(path: Path, field: str, problem: str) -> EdgekitError:
    return EdgekitError(f"{path}: {field}: {problem}")


def _version(path: Path, field: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        raise _fail(path, field, f"{value!r} must be a quoted version string like \"8.5\" "
                                 "(YAML reads 10.10 as the number 10.1)")
    if not _VERSION.match(value):
        raise _fail(path, field, f"{value!r} is not a dotted version (digits and dots, optionally ending in .x)")
    return value


def _range(path: Path, field: str, value: Any) -> VersionRange | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(path, field, f"must be a mapping {{min: \"..\", max: \"..\"}} or null, not {value!r}")
    extra = sorted(set(value) - {"min", "max"})
    if extra:
        raise _fail(path, f"{field}.{extra[0]}", "unknown field (expected min, max)")
    lo = _version(path, f"{field}.min", value.get("min"))
    hi = _version(path, f"{field}.max", value.get("max"))
    if lo is None and hi is None:
        raise _fail(path, field, "give min, max or both (or null for no range)")
    if lo is not None and hi is not None and _parts(hi):
        n = min(len(_parts(lo)), len(_parts(hi)))
        if _parts(lo)[:n] > _parts(hi)[:n]:
            raise _fail(path, field, f"min {lo} is above max {hi}")
    return VersionRange(lo, hi)


def _number(path: Path, field: str, value: Any, *, nullable: bool, integer: bool = False,
            minimum: float = 0.0, strict: bool = False) -> Any:
    if value is None:
        if nullable:
            return None
        raise _fail(path, field, "must be a number, not null")
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise _fail(path, field, f"{value!r} is not {'an integer' if integer else 'a number'}")
    if value < minimum or (strict and value <= minimum):
        raise _fail(path, field, f"{value!r} must be {'>' if strict else '>='} {minimum:g}")
    return value if integer else float(value)


def _str_list(path: Path, field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, field, f"must be a list of names, not {value!r}")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise _fail(path, field, f"{dup[0]!r} is listed twice")
    return tuple(value)


def _choice(path: Path, field: str, value: Any, allowed: tuple[str, ...], *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if value not in allowed:
        options = ", ".join(allowed) + (" or null" if nullable else "")
        raise _fail(path, field, f"{value!r} is not one of {options}")
    return value


def _parse(path: Path) -> Target:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EdgekitError(f"{path}: malformed YAML{where}: {problem}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: cannot read target file ({exc})") from exc
    if not isinstance(raw, dict):
        raise EdgekitError(f"{path}: a target must be a YAML mapping of fields, not {type(raw).__name__}")
    for key in REQUIRED:
        if key not in raw:
            raise _fail(path, key, "missing (required field)")
    unknown = sorted(str(k) for k in raw if k not in REQUIRED and k not in OPTIONAL)
    if unknown:
        raise _fail(path, unknown[0], f"unknown field (known: {', '.join(REQUIRED + OPTIONAL)})")

    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, "name", f"{name!r} must be lower-case letters, digits, '.', '_' or '-'")
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        raise _fail(path, "description", "must be a non-empty string")
    aliases = _str_list(path, "aliases", raw.get("aliases"))
    for alias in aliases:
        if not _NAME.match(alias):
            raise _fail(path, "aliases", f"{alias!r} must be lower-case letters, digits, '.', '_' or '-'")
        if alias == name:
            raise _fail(path, "aliases", f"{alias!r} is the target's own name")

    kind = _choice(path, "kind", raw["kind"], KINDS)
    backend = _choice(path, "backend", raw["backend"], BACKENDS)
    fallback = _choice(path, "fallback", raw["fallback"], BACKENDS, nullable=True)
    if fallback == backend:
        raise _fail(path, "fallback", f"{fallback!r} is the default backend itself; use another backend or null")
    if kind == "cpu" and backend == "tensorrt":
        raise _fail(path, "backend", "tensorrt needs an NVIDIA GPU; a cpu target uses openvino or onnxruntime")
    if fallback == "tensorrt" and kind == "cpu":
        raise _fail(path, "fallback", "tensorrt needs an NVIDIA GPU; a cpu target uses openvino or onnxruntime")

    cc = raw["compute_capability"]
    if cc is not None and (not isinstance(cc, str) or not _CC.match(cc)):
        raise _fail(path, "compute_capability", f"{cc!r} must be a quoted \"major.minor\" string like \"8.7\" or null")
    if kind == "cpu" and cc is not None:
        raise _fail(path, "compute_capability", "must be null for a cpu target")
    if kind != "cpu" and cc is None:
        raise _fail(path, "compute_capability", f"required for a {kind} target")
    gpu = raw["gpu"]
    if gpu is not None and not isinstance(gpu, str):
        raise _fail(path, "gpu", f"{gpu!r} must be a string or null")

    jetpack = _range(path, "jetpack", raw["jetpack"])
    tensorrt = _range(path, "tensorrt", raw["tensorrt"])
    if kind == "jetson" and jetpack is None:
        raise _fail(path, "jetpack", "required for a jetson target")
    if kind != "jetson" and jetpack is not None:
        raise _fail(path, "jetpack", f"must be null for a {kind} target")
    if "tensorrt" in (backend, fallback) and tensorrt is None:
        raise _fail(path, "tensorrt", "required when the backend or fallback is tensorrt")
    if kind == "cpu" and tensorrt is not None:
        raise _fail(path, "tensorrt", "must be null for a cpu target")

    precisions = _str_list(path, "precisions", raw["precisions"])
    if not precisions:
        raise _fail(path, "precisions", "list at least one of " + ", ".join(PRECISIONS))
    for p in precisions:
        if p not in PRECISIONS:
            raise _fail(path, "precisions", f"{p!r} is not one of {', '.join(PRECISIONS)}")
    int8_route = _choice(path, "int8_route", raw["int8_route"], INT8_ROUTES)
    if "int8" in precisions and int8_route == "none":
        raise _fail(path, "int8_route", "is none but precisions lists int8")
    if int8_route == "calibration-cache":
        if backend != "tensorrt":
            raise _fail(path, "int8_route", "calibration-cache is TensorRT's implicit-INT8 route; "
                                            f"backend {backend} takes qdq")
        if tensorrt is not None and tensorrt.max is not None and _parts(tensorrt.max)[:1] >= (11,):
            raise _fail(path, "int8_route", "calibration-cache is removed in TensorRT 11 (tensorrt.max is "
                                            f"{tensorrt.max}); use qdq")

    dla = _number(path, "dla_cores", raw["dla_cores"], nullable=False, integer=True)
    if dla and backend != "tensorrt":
        raise _fail(path, "dla_cores", "DLA cores are reached through TensorRT only; set 0 or backend tensorrt")
    memory_gb = _number(path, "memory_gb", raw["memory_gb"], nullable=False, strict=True)
    workspace_mb = _number(path, "workspace_mb", raw["workspace_mb"], nullable=False, integer=True)
    if workspace_mb > memory_gb * 1024:
        raise _fail(path, "workspace_mb", f"{workspace_mb} MB is more than the device's {memory_gb:g} GB")
    if backend == "tensorrt" and workspace_mb == 0:
        raise _fail(path, "workspace_mb", "TensorRT needs a builder workspace above 0")

    peak_raw = raw["peak"]
    if not isinstance(peak_raw, dict):
        raise _fail(path, "peak", f"must be a mapping of {', '.join(PEAK_FIELDS)}")
    for key in PEAK_FIELDS:
        if key not in peak_raw:
            raise _fail(path, f"peak.{key}", "missing (use null where the hardware has none)")
    extra = sorted(str(k) for k in peak_raw if k not in PEAK_FIELDS)
    if extra:
        raise _fail(path, f"peak.{extra[0]}", f"unknown field (known: {', '.join(PEAK_FIELDS)})")
    peak = Peak(**{k: _number(path, f"peak.{k}", peak_raw[k], nullable=True, minimum=0.0, strict=True)
                   for k in PEAK_FIELDS})
    if dla == 0 and peak.dla_int8_tops is not None:
        raise _fail(path, "peak.dla_int8_tops", "given but dla_cores is 0")
    power_modes = _str_list(path, "power_modes", raw["power_modes"])
    cpu_isa = _str_list(path, "cpu_isa", raw.get("cpu_isa"))
    if cpu_isa and kind != "cpu":
        raise _fail(path, "cpu_isa", f"only for a cpu target (this is a {kind} target)")
    for isa in cpu_isa:
        if isa not in CPU_ISA:
            raise _fail(path, "cpu_isa", f"{isa!r} is not one of {', '.join(CPU_ISA)}")

    return Target(
        name=name, description=raw["description"].strip(), aliases=aliases, kind=kind, backend=backend,
        fallback=fallback, compute_capability=cc, gpu=gpu, jetpack=jetpack, tensorrt=tensorrt,
        precisions=precisions, int8_route=int8_route, dla_cores=dla, memory_gb=memory_gb,
        workspace_mb=workspace_mb, peak=peak, power_modes=power_modes, path=path, cpu_isa=cpu_isa,
    )


# --------------------------------------------------------------------------- finding targets

def _index(folder: Path | None = None) -> tuple[list[Target], dict[str, Target]]:
    """All targets in ``folder`` and a lookup of every name and alias; names and aliases must be unique."""
    folder = targets_dir() if folder is None else Path(folder)
    targets = [_parse(p) for p in sorted(folder.glob("*.yaml"))]
    lookup: dict[str, Target] = {}
    for t in targets:
        if t.name in lookup:
            other = lookup[t.name]
            raise _fail(t.path, "name", f"{t.name!r} is already used by {other.path}")
        lookup[t.name] = t
    for t in targets:
        for alias in t.aliases:
            if alias in lookup:
                other = lookup[alias]
                what = "name" if other.name == alias else "an alias"
                raise _fail(t.path, "aliases", f"{alias!r} is already {what} of {other.path}")
            lookup[alias] = t
    return targets, lookup


def list_targets() -> list[Target]:
    """Every bundled target, sorted by file name."""
    return _index()[0]


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def load_target(name_or_path: str | Path) -> Target:
    """A target by name (``targets/<name>.yaml``), by alias (``jetson-orin``), or from a path to a user's
    own YAML file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        p = Path(name_or_path)
        if not p.is_file():
            raise EdgekitError(f"{p}: target file not found")
        return _parse(p)
    targets, lookup = _index()
    key = text.strip().lower()
    if key in lookup:
        return lookup[key]
    names = ", ".join(t.name for t in targets)
    aliases = ", ".join(f"{a} -> {t.name}" for t in targets for a in t.aliases)
    raise EdgekitError(f"unknown target {text!r} (known: {names}; aliases: {aliases or 'none'}; "
                       "or give a path to your own target .yaml)")


def host_cpu() -> tuple[str, list[str]]:
    """This machine's CPU model name and the instruction-set extensions that decide INT8 and bf16 speed (Linux): the
    ones a target's ``cpu_isa`` may name."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return name or platform.machine(), [f for f in CPU_ISA if f in flags]
