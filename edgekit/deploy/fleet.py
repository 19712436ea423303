"""The fleet inventory, ``cameras.yaml``, checked strictly when loaded::

    known_hosts: ~/.config/edgekit/known_hosts    # the cameras' host keys; an unknown or changed one is refused
    cameras:
      - {name: hr1-top, host: 10.0.4.21, port: 22, user: edgekit, identity: ~/.ssh/edgekit_ed25519,
         target: jetson-orin-nx, install: /opt/edgekit, line: hot-rolling-1, station: top, python: python3}

``port`` (22), ``python`` (``python3``: the camera's interpreter that runs ``edgekit-device.pyz``),
``line`` and ``station`` are optional; everything else is required, names are unique, paths are
absolute on the camera, targets are known.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from edgekit.errors import EdgekitError
from edgekit.targets import load_target

REQUIRED = ("name", "host", "user", "identity", "target", "install")


@dataclass(frozen=True)
class Camera:
    name: str
    host: str
    user: str
    identity: Path
    target: str
    install: str              # absolute path on the camera
    port: int = 22
    line: str = ""
    station: str = ""
    python: str = "python3"


@dataclass(frozen=True)
class Fleet:
    path: Path
    known_hosts: Path
    cameras: tuple[Camera, ...]

    def select(self, names: list[str] | None = None, line: str | None = None, every: bool = False) -> list[Camera]:
        """The cameras named, or on a line, or all; an unknown name or an empty choice is an error."""
        if sum(bool(x) for x in (names, line, every)) != 1:
            raise EdgekitError("name the cameras: --camera NAME (repeatable), --line LINE or --all")
        if every:
            return list(self.cameras)
        if line:
            chosen = [c for c in self.cameras if c.line == line]
            if not chosen:
                raise EdgekitError(f"{self.path}: no camera on line {line!r}")
            return chosen
        by_name = {c.name: c for c in self.cameras}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise EdgekitError(f"{self.path}: no camera named {', '.join(map(repr, unknown))} "
                               f"(cameras: {', '.join(by_name)})")
        return [by_name[n] for n in names]


def load_fleet(path: Path) -> Fleet:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError:
        raise EdgekitError(f"{path}: fleet inventory not found") from None
    except yaml.YAMLError as exc:
        raise EdgekitError(f"{path}: not YAML ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict) or set(raw) - {"known_hosts", "cameras"} or not isinstance(raw.get("cameras"), list):
        raise EdgekitError(f"{path}: expected the keys known_hosts and cameras (a list)")
    if not raw.get("known_hosts"):
        raise EdgekitError(f"{path}: known_hosts: missing (the cameras' host keys are checked, never learned)")
    known = Path(str(raw["known_hosts"])).expanduser()
    if not known.is_absolute():
        known = path.parent / known
    names = {f.name for f in fields(Camera)}
    cameras = []
    for i, entry in enumerate(raw["cameras"], 1):
        where = f"{path}: camera {i}"
        if not isinstance(entry, dict):
            raise EdgekitError(f"{where}: expected a mapping")
        unknown, missing = sorted(set(entry) - names), [k for k in REQUIRED if not entry.get(k)]
        if unknown or missing:
            raise EdgekitError(f"{where}: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])))
        if not str(entry["install"]).startswith("/"):
            raise EdgekitError(f"{where}: install must be an absolute path on the camera, got {entry['install']!r}")
        port = entry.get("port", 22)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise EdgekitError(f"{where}: port must be a number 1..65535")
        load_target(entry["target"])
        identity = Path(str(entry["identity"])).expanduser()
        cameras.append(Camera(**{**entry, "name": str(entry["name"]), "identity": identity if identity.is_absolute()
                                 else path.parent / identity, "target": load_target(entry["target"]).name}))
    seen = [c.name for c in cameras]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise EdgekitError(f"{path}: camera name(s) {', '.join(dupes)} appear twice")
    return Fleet(path, known, tuple(cameras))
