"""A camera's install folder: verified bundles in slots, one of them active, the one before kept.

    <install>/trusted/*.pub        the public keys this camera accepts bundles from
    <install>/slots/<id>/          an unpacked, verified bundle (``id``: the bundle file's SHA-256, 16 hex)
    <install>/active -> slots/<id> the slot the runtime runs
    <install>/previous -> ...      the slot before it, for rollback
    <install>/engines/<id>/        what the camera built for a slot: a device kit's TensorRT engines, an
                                   OpenVINO IR's compiled blob (removed with the slot)

A slot appears whole or not at all (:func:`edgekit.deploy.bundle.open_bundle`); ``active`` and
``previous`` are symbolic links replaced by a rename, which POSIX makes atomic: a reader sees the old
slot or the new one, never neither, whatever moment the process is killed. Slots other than the active
and previous ones are removed after a switch. Device-side code: Python 3.6+.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

from edgekit.camera import trust
from edgekit.camera.bundle import MANIFEST, SIGNED, fsync_dir, open_bundle, sha256
from edgekit.errors import EdgekitError

ACTIVE, PREVIOUS, SLOTS, TRUSTED = "active", "previous", "slots", "trusted"
HELD = "held"          # <install>/held/<pid>: the slot a running process (edgekit run) has loaded
APP_FOLDER, APP_NAME = "app", "edgekit-device.pyz"   # <install>/app/: each camera program flash sent, and a link
ENGINES = "engines"    # <install>/engines/<slot>/: what the camera built for a slot (a device kit's TensorRT engines,
                       # an OpenVINO IR's compiled blobs)


def bundle_id(path: Path) -> str:
    with open(str(path), "rb") as f:
        return sha256(f)[:16]


def _link(install: Path, name: str) -> Optional[str]:
    """The slot id a link points at, or None."""
    link = install / name
    if not link.is_symlink():
        return None
    return Path(os.readlink(str(link))).name


def _point(install: Path, name: str, slot: str) -> None:
    """Make ``install/name`` point at ``slots/<slot>`` by one rename."""
    tmp = install / ".{}.{}".format(name, os.getpid())
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.join(SLOTS, slot), str(tmp))
    os.replace(str(tmp), str(install / name))
    fsync_dir(install)                  # the rename reaches the disk before anyone is told it happened


def verify(install: Path, bundle: Path) -> Dict[str, Any]:
    """Check ``bundle`` against the trusted keys and unpack it into a new slot (kept if it already is);
    returns the manifest with ``slot``. The active slot is not touched."""
    install, bundle = Path(install), Path(bundle)
    trusted = trust.trusted(install / TRUSTED)
    if not trusted:
        raise EdgekitError("{}: no trusted public keys: this camera accepts no bundle".format(install / TRUSTED))
    slot = bundle_id(bundle)
    dest = install / SLOTS / slot
    if dest.is_dir() and (dest / MANIFEST).is_file():
        vouched(install, slot)
        return dict(json.loads((dest / MANIFEST).read_text()), slot=slot)
    manifest = open_bundle(bundle, trusted, dest)
    return dict(manifest, slot=slot)


def vouched(install: Path, slot: str) -> None:
    """Refuse a slot whose signing key is no longer among the camera's trusted keys (a key withdrawn from
    ``trusted/`` withdraws every slot it signed: none is re-verified, activated or rolled back to)."""
    try:
        key = json.loads((Path(install) / SLOTS / slot / SIGNED).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EdgekitError("{}: slot {} has no record of its signing key: refused".format(install, slot)) from None
    if key not in trust.trusted(Path(install) / TRUSTED):
        raise EdgekitError("{}: slot {} was signed by key {}, which is no longer among the trusted keys: "
                           "refused".format(install, slot, key))


def activate(install: Path, slot: str) -> Dict[str, Optional[str]]:
    """Make ``slot`` the active one (the active one becomes previous); prune the other slots."""
    install = Path(install)
    if not (install / SLOTS / slot / MANIFEST).is_file():
        raise EdgekitError("{}: no verified slot {}".format(install / SLOTS, slot))
    vouched(install, slot)
    current = _link(install, ACTIVE)
    if current != slot:
        if current is not None:
            _point(install, PREVIOUS, current)
        _point(install, ACTIVE, slot)
    _prune(install)
    return status_links(install)


def link_app(install: Path, app: Path) -> Optional[str]:
    """Point ``<install>/app/edgekit-device.pyz`` at ``app``, the camera program that activated a slot (flash
    uploads each version under its own name beside it): the stable path a service unit runs, switched by one
    rename. Nothing when ``app`` is not a zipapp in that folder (``edgekit device activate``)."""
    folder = Path(install) / APP_FOLDER
    app = Path(app).resolve()
    if app.suffix != ".pyz" or app.parent != folder.resolve() or app.name == APP_NAME:
        return None
    link, tmp = folder / APP_NAME, folder / ".{}.new".format(APP_NAME)
    if os.path.lexists(str(tmp)):
        os.unlink(str(tmp))
    os.symlink(app.name, str(tmp))
    os.replace(str(tmp), str(link))
    fsync_dir(folder)
    return str(link)


def rollback(install: Path) -> Dict[str, Optional[str]]:
    """Return to the previous slot (the active one becomes previous)."""
    install = Path(install)
    previous, current = _link(install, PREVIOUS), _link(install, ACTIVE)
    if previous is None or not (install / SLOTS / previous / MANIFEST).is_file():
        raise EdgekitError("{}: no previous slot to return to".format(install))
    vouched(install, previous)
    _point(install, ACTIVE, previous)
    if current is not None:
        _point(install, PREVIOUS, current)
    return status_links(install)


def hold(install: Path, slot: str) -> Path:
    """Record that this process runs ``slot``: no switch removes it while the process lives."""
    folder = Path(install) / HELD
    folder.mkdir(exist_ok=True)
    path = folder / str(os.getpid())
    tmp = folder / ".{}".format(os.getpid())
    tmp.write_text(slot)
    os.replace(str(tmp), str(path))
    return path


def held(install: Path) -> set:
    """The slots live processes hold (the records of processes that are gone are removed)."""
    found = set()
    folder = Path(install) / HELD
    for record in folder.iterdir() if folder.is_dir() else ():
        try:
            os.kill(int(record.name), 0)
        except ProcessLookupError:
            record.unlink()
            continue
        except (ValueError, PermissionError):
            pass                                          # not a pid, or another user's process: kept
        try:
            found.add(record.read_text().strip())
        except FileNotFoundError:                         # let go of meanwhile
            pass
    return found


def _prune(install: Path) -> None:
    keep = {_link(install, ACTIVE), _link(install, PREVIOUS)} | held(install)
    for folder in (SLOTS, ENGINES):               # a slot and the engines built for it go together
        for slot in (install / folder).iterdir() if (install / folder).is_dir() else ():
            if slot.name not in keep:
                shutil.rmtree(str(slot), ignore_errors=True)


def damaged(install: Path, slot: str) -> list:
    """The files of a slot that no longer match its manifest (missing, altered, or not listed)."""
    folder = Path(install) / SLOTS / slot
    files = json.loads((folder / MANIFEST).read_text())["files"]
    found = []
    for name, entry in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            found.append(name + " (missing)")
            continue
        with open(str(path), "rb") as f:
            if sha256(f) != entry["sha256"]:
                found.append(name + " (altered)")
    listed = set(files) | {MANIFEST, SIGNED}
    found += [p.relative_to(folder).as_posix() + " (not listed)" for p in folder.rglob("*")
              if p.is_file() and p.relative_to(folder).as_posix() not in listed]
    return found


def status_links(install: Path) -> Dict[str, Optional[str]]:
    return {ACTIVE: _link(Path(install), ACTIVE), PREVIOUS: _link(Path(install), PREVIOUS)}


def status(install: Path) -> Dict[str, Any]:
    """The active and previous slots with their manifests' recipe, target, artifact and figure."""
    install = Path(install)
    out: Dict[str, Any] = {}
    for name, slot in status_links(install).items():
        manifest = install / SLOTS / slot / MANIFEST if slot else None
        if manifest is None or not manifest.is_file():
            out[name] = None
            continue
        m = json.loads(manifest.read_text())
        out[name] = {"slot": slot, "recipe": m.get("recipe"), "target": m.get("target"),
                     "artifact": m.get("artifact"), "validation": m.get("validation")}
    return out
