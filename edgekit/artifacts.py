"""Stage artifacts: a folder holding files plus ``manifest.json`` (inputs, hashes, settings, results).

Every stage writes its folder through :func:`staged_dir`, which builds it under a temporary
sibling and renames it into place only when the stage succeeded, so a failure never leaves a
half-written artifact. :func:`is_fresh` lets ``build`` skip a stage whose inputs and settings
have not changed.
"""
import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from edgekit import __version__
from edgekit.errors import EdgekitError

MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling and rename it over ``path``: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_manifest(
    folder: Path,
    stage: str,
    inputs: Dict[str, Union[Path, str]],
    settings: Dict[str, Any],
    results: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Write ``manifest.json`` into ``folder``, hashing every input file and every file in it."""
    folder = Path(folder)
    manifest = {
        "stage": stage,
        "edgekit": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {k: _describe_input(v) for k, v in inputs.items()},
        "settings": settings,
        "settings_hash": sha256_json(settings),
        "results": results or {},
        "files": {
            str(p.relative_to(folder)): sha256_file(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        },
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def _describe_input(value: Union[Path, str]) -> Dict[str, str]:
    p = Path(value)
    if p.is_file():
        return {"path": str(p), "sha256": sha256_file(p)}
    if p.is_dir() and (p / MANIFEST).is_file():
        return {"path": str(p), "sha256": sha256_file(p / MANIFEST)}
    return {"path": str(value), "sha256": ""}


def read_manifest(folder: Path) -> Dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise EdgekitError(f"{folder}: not an edgekit artifact (no {MANIFEST})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EdgekitError(f"{path}: corrupt manifest ({exc.msg} at line {exc.lineno})") from exc


def is_fresh(folder: Path, stage: str, inputs: Dict[str, Union[Path, str]], settings: Dict[str, Any]) -> bool:
    """True when ``folder`` holds a complete artifact of ``stage`` made from the same inputs and settings."""
    try:
        m = read_manifest(folder)
    except EdgekitError:
        return False
    if m.get("stage") != stage or m.get("settings_hash") != sha256_json(settings):
        return False
    if m.get("inputs") != {k: _describe_input(v) for k, v in inputs.items()}:
        return False
    return all((Path(folder) / name).is_file() for name in m.get("files", {}))
