"""Writing a signed bundle on the workstation (the camera's side, reading one: :mod:`edgekit.camera.bundle`,
where the layout is described)."""
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

from edgekit.camera.bundle import FORMAT, HEADER_SIZE, MAGIC, MANIFEST, PAYLOAD, canonical, fsync_dir, sha256
from edgekit.deploy import keys as keys_mod
from edgekit.errors import EdgekitError


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def seal(tar_path: Path, key, out: Path) -> None:
    """Write ``out``: the signed header (the tar's size and SHA-256 under ``key``'s signature), then the tar;
    the file appears at ``out`` complete, on disk, or not at all."""
    tar_path, out = Path(tar_path), Path(out)
    with open(str(tar_path), "rb") as f:
        signed = {"format": FORMAT, "size": tar_path.stat().st_size, "sha256": sha256(f)}
    header = {"key": keys_mod.fingerprint(key.public_key()), "signature": key.sign(canonical(signed)).hex(),
              "signed": signed}
    head = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".{}.".format(out.name), dir=str(out.parent))
    try:
        with os.fdopen(fd, "wb") as raw, open(str(tar_path), "rb") as src:
            raw.write(head.ljust(HEADER_SIZE, b" "))
            shutil.copyfileobj(src, raw, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, str(out))
        fsync_dir(out.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bundle(files: Dict[str, Path], meta: Dict[str, Any], key, out: Path) -> Dict[str, Any]:
    """Sign and write a bundle of ``files`` (payload name -> file) with ``meta`` in its manifest; the file
    appears at ``out`` complete or not at all. Returns the manifest."""
    out = Path(out)
    listed = {}
    for name, path in sorted(files.items()):
        if name != posixpath.normpath(name) or name.startswith(("/", "..")):
            raise EdgekitError("{}: payload name {!r} is not a plain relative path".format(path, name))
        with open(str(path), "rb") as f:
            listed[name] = {"sha256": sha256(f), "size": Path(path).stat().st_size}
    manifest = dict(meta, format=FORMAT, files=listed)
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".{}.tar.".format(out.name), dir=str(out.parent))
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, body)
            for name in sorted(files):
                info = tar.gettarinfo(str(files[name]), arcname="{}/{}".format(PAYLOAD, name))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(str(files[name]), "rb") as f:
                    tar.addfile(info, f)
        seal(Path(tmp), key, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return manifest
