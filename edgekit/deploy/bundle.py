"""A signed bundle: one file holding what a camera runs, and the camera's check of it.

Layout (an uncompressed tar; engines and weights do not compress):

    bundle.json    the manifest: format, recipe, target, what the payload is, the validation figures,
                   and the SHA-256 and size of every payload file
    bundle.sig     {"key": <fingerprint>, "signature": <hex>}: Ed25519 over the exact bytes of bundle.json
    payload/...    the files

Reading (:func:`open_bundle`) trusts nothing before the signature checks out: every member must be a
regular file or folder under those names (no absolute path, no ``..``, no link or device, none larger
than the limit, no name twice), the manifest must be signed by a trusted key, the payload must be exactly
the manifest's files with their hashes, and only then does the staging folder become ``dest``, at once.
Device-side code: Python 3.6+, the standard library and ``cryptography``.
"""
import hashlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

from edgekit.deploy import keys as keys_mod
from edgekit.errors import EdgekitError

FORMAT = 1
MANIFEST, SIGNATURE, PAYLOAD = "bundle.json", "bundle.sig", "payload"
MAX_MEMBER = 4 << 30          # 4 GiB: larger than any engine or model a camera runs


def _sha256(f) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def write_bundle(files: Dict[str, Path], meta: Dict[str, Any], key, out: Path) -> Dict[str, Any]:
    """Sign and write a bundle of ``files`` (payload name -> file) with ``meta`` in its manifest; the file
    appears at ``out`` complete or not at all. Returns the manifest."""
    out = Path(out)
    listed = {}
    for name, path in sorted(files.items()):
        if name != posixpath.normpath(name) or name.startswith(("/", "..")):
            raise EdgekitError("{}: payload name {!r} is not a plain relative path".format(path, name))
        with open(str(path), "rb") as f:
            listed[name] = {"sha256": _sha256(f), "size": Path(path).stat().st_size}
    manifest = dict(meta, format=FORMAT, files=listed)
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    signature = {"key": keys_mod.fingerprint(key.public_key()), "signature": key.sign(body).hex()}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".{}.".format(out.name), dir=str(out.parent))
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, body)
            _add(tar, SIGNATURE, json.dumps(signature).encode())
            for name in sorted(files):
                info = tar.gettarinfo(str(files[name]), arcname="{}/{}".format(PAYLOAD, name))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(str(files[name]), "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp, str(out))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return manifest


def _member_problem(m: tarfile.TarInfo, max_member: int) -> Optional[str]:
    name = m.name
    if name.startswith("/") or posixpath.isabs(name):
        return "an absolute path"
    if ".." in name.split("/") or posixpath.normpath(name) != name.rstrip("/"):
        return "a path that leaves the bundle"
    if not (m.isreg() or m.isdir()):
        return "a link or special file"
    if m.size > max_member:
        return "larger than {} bytes".format(max_member)
    if name not in (MANIFEST, SIGNATURE, PAYLOAD) and not name.startswith(PAYLOAD + "/"):
        return "outside the bundle's layout"
    return None


def peek_manifest(path: Path) -> Dict[str, Any]:
    """The manifest as written, unverified: for the workstation's own checks (which target a bundle is for)
    before it is sent; the camera verifies."""
    path = Path(path)
    try:
        with tarfile.open(str(path), mode="r:") as tar:
            return json.loads(tar.extractfile(MANIFEST).read().decode())
    except (OSError, tarfile.TarError, KeyError, AttributeError, ValueError) as exc:
        raise EdgekitError("{}: not a bundle ({})".format(path, exc)) from None


def read_manifest(path: Path, trusted: Dict[str, Any], max_member: int = MAX_MEMBER) -> Dict[str, Any]:
    """The bundle's manifest, once its members are safe and its signature is a trusted key's."""
    path = Path(path)
    try:
        tar = tarfile.open(str(path), mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise EdgekitError("{}: not a bundle ({})".format(path, exc)) from None
    with tar:
        return _verified(path, tar, trusted, max_member)[0]


def _verified(path: Path, tar: tarfile.TarFile, trusted: Dict[str, Any], max_member: int):
    members: Dict[str, tarfile.TarInfo] = {}
    try:
        listed = tar.getmembers()
    except (tarfile.TarError, EOFError) as exc:
        raise EdgekitError("{}: damaged bundle ({})".format(path, exc)) from None
    for m in listed:
        problem = _member_problem(m, max_member)
        if problem:
            raise EdgekitError("{}: member {!r} is {}: refused".format(path, m.name, problem))
        if m.name in members:
            raise EdgekitError("{}: member {!r} appears twice: refused".format(path, m.name))
        members[m.name] = m
    for needed in (MANIFEST, SIGNATURE):
        if needed not in members or not members[needed].isreg():
            raise EdgekitError("{}: no {}: not a signed bundle".format(path, needed))
    body = tar.extractfile(members[MANIFEST]).read()
    try:
        signature = json.loads(tar.extractfile(members[SIGNATURE]).read().decode())
        key, sig = trusted.get(signature["key"]), bytes.fromhex(signature["signature"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EdgekitError("{}: unreadable {}".format(path, SIGNATURE)) from None
    if key is None:
        raise EdgekitError("{}: signed by key {}, which is not among the trusted keys ({}): refused".format(
            path, signature["key"], ", ".join(sorted(trusted)) or "none"))
    try:
        key.verify(sig, body)
    except Exception:  # noqa: BLE001 - cryptography's InvalidSignature, without importing it here
        raise EdgekitError("{}: the signature does not match {} (altered after signing): refused".format(
            path, MANIFEST)) from None
    manifest = json.loads(body.decode())
    if manifest.get("format") != FORMAT:
        raise EdgekitError("{}: bundle format {!r}, this edgekit reads {}".format(path, manifest.get("format"), FORMAT))
    payload = {n[len(PAYLOAD) + 1:]: m for n, m in members.items() if n.startswith(PAYLOAD + "/") and m.isreg()}
    if set(payload) != set(manifest["files"]):
        extra, missing = sorted(set(payload) - set(manifest["files"])), sorted(set(manifest["files"]) - set(payload))
        raise EdgekitError("{}: payload differs from the signed list (extra: {}; missing: {}): refused".format(
            path, ", ".join(extra) or "-", ", ".join(missing) or "-"))
    return manifest, payload


def open_bundle(path: Path, trusted: Dict[str, Any], dest: Path, max_member: int = MAX_MEMBER) -> Dict[str, Any]:
    """Verify the bundle and unpack its payload into ``dest`` (which appears complete, or not at all);
    returns the manifest."""
    path, dest = Path(path), Path(dest)
    try:
        tar = tarfile.open(str(path), mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise EdgekitError("{}: not a bundle ({})".format(path, exc)) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".{}.".format(dest.name), dir=str(dest.parent)))
    try:
        with tar:
            manifest, payload = _verified(path, tar, trusted, max_member)
            for name, member in sorted(payload.items()):
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with tar.extractfile(member) as src, open(str(target), "wb") as out:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
                if h.hexdigest() != manifest["files"][name]["sha256"]:
                    raise EdgekitError("{}: {} does not match its signed hash (altered): refused".format(path, name))
            (staging / MANIFEST).write_bytes(tar.extractfile(tar.getmember(MANIFEST)).read())
        if dest.exists():
            raise EdgekitError("{}: exists; a bundle is unpacked into a new folder".format(dest))
        os.rename(str(staging), str(dest))
    except BaseException:
        shutil.rmtree(str(staging), ignore_errors=True)
        raise
    return manifest
