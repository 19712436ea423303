"""A signed bundle: one file holding what a camera runs, and the camera's check of it (written on the
workstation by :mod:`edgekit.deploy.bundle`).

Layout:

    signed header  4096 bytes: ``EDGEKIT-BUNDLE/2`` and one JSON line {"key": <fingerprint>, "signature": <hex>,
                   "signed": {"format": 2, "size": <bytes of the tar>, "sha256": <of the tar>}}, space-padded;
                   the signature is Ed25519 over the canonical JSON of "signed"
    tar            uncompressed (engines and weights do not compress):
                       bundle.json    the manifest: format, recipe, target, what the payload is, the validation
                                      figures, and the SHA-256 and size of every payload file
                       payload/...    the files

Reading (:func:`open_bundle`) parses nothing of the tar before it is authenticated: the header's fixed 4 KiB
are read, its signature checked against the trusted keys, the file's size compared with the signed size, and
the SHA-256 of exactly those bytes compared with the signed hash. A hostile file (a tar header that sends
``tarfile`` into a loop, a sparse member that makes it allocate gigabytes, a signed manifest re-used over a
larger payload) is refused there, in one bounded pass over the bytes, whatever the camera's Python. After that
every member must still be a regular file or folder under the layout's names (no absolute path, no ``..``, no
link, device or sparse member, none larger than the limit, no name twice), the payload exactly the manifest's
files, each no longer than its listed size and matching its hash, before the staging folder becomes ``dest``,
at once and on disk (files and folders fsynced before the rename, the parent after it).
Device-side code: Python 3.6+, the standard library and ``cryptography``.
"""
import contextlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, Optional, Tuple

from edgekit.errors import EdgekitError

FORMAT = 2
MAGIC = b"EDGEKIT-BUNDLE/2\n"
HEADER_SIZE = 4096
MANIFEST, PAYLOAD = "bundle.json", "payload"
SIGNED = "signed.json"        # an unpacked slot's copy of the signed header: which key vouched for it
MAX_MEMBER = 4 << 30          # 4 GiB: larger than any engine or model a camera runs
MAX_BUNDLE = 16 << 30         # what a signed header may announce


def new_sha256(data: bytes = b""):
    """hashlib's SHA-256, imported here: hashlib loads OpenSSL (3.6 MB resident), which running the line never
    needs."""
    import hashlib

    return hashlib.sha256(data)


def sha256(f, size: Optional[int] = None) -> str:
    """SHA-256 of ``f`` from where it stands: to its end, or exactly ``size`` bytes (fewer: an error)."""
    h = new_sha256()
    left = size
    while left is None or left > 0:
        block = f.read(1 << 20 if left is None else min(1 << 20, left))
        if not block:
            if left:
                raise EOFError("{} bytes short".format(left))
            break
        h.update(block)
        if left is not None:
            left -= len(block)
    return h.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX: fsync the directory)."""
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def canonical(signed: Dict[str, Any]) -> bytes:
    return json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()


def _member_problem(m: tarfile.TarInfo, max_member: int) -> Optional[str]:
    name = m.name
    if name.startswith("/") or posixpath.isabs(name):
        return "an absolute path"
    if ".." in name.split("/") or posixpath.normpath(name) != name.rstrip("/"):
        return "a path that leaves the bundle"
    if m.issparse():
        return "a sparse file"
    if not (m.isreg() or m.isdir()):
        return "a link or special file"
    if m.size > max_member:
        return "larger than {} bytes".format(max_member)
    if name not in (MANIFEST, PAYLOAD) and not name.startswith(PAYLOAD + "/"):
        return "outside the bundle's layout"
    return None


@contextlib.contextmanager
def unverified_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The bundle's tar, past its header, NOT authenticated: for the workstation's look at its own bundles and
    for tests; a camera reads through :func:`open_bundle`."""
    with open(str(path), "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise EdgekitError("{}: not an edgekit bundle (no {} header)".format(path, MAGIC.decode().strip()))
        f.seek(HEADER_SIZE)
        with _tar(Path(path), f) as tar:
            yield tar


def peek_manifest(path: Path) -> Dict[str, Any]:
    """The manifest as written, unverified: for the workstation's own checks (which target a bundle is for)
    before it is sent; the camera verifies."""
    path = Path(path)
    try:
        with unverified_tar(path) as tar:
            return json.loads(tar.extractfile(MANIFEST).read().decode())
    except (OSError, tarfile.TarError, KeyError, AttributeError, ValueError) as exc:
        raise EdgekitError("{}: not a bundle ({})".format(path, exc)) from None


def authenticate(path: Path, trusted: Dict[str, Any], max_bundle: int = MAX_BUNDLE) -> Tuple[BinaryIO, Dict[str, Any]]:
    """Check ``path``'s signed header and the SHA-256 of everything after it before any of it is parsed: one
    bounded read of 4 KiB, one pass over exactly the signed number of bytes. Returns the open file, at the
    tar's start, and the signed header."""
    path = Path(path)
    try:
        f = open(str(path), "rb")
    except OSError as exc:
        raise EdgekitError("{}: not a bundle ({})".format(path, exc.strerror)) from None
    try:
        total = os.fstat(f.fileno()).st_size
        head = f.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE or not head.startswith(MAGIC):
            older = head[257:262] == b"ustar"          # format 1: a tar signed inside
            raise EdgekitError("{}: {}: refused".format(path, "a format-1 bundle (signed inside its tar); rebuild it "
                                                        "with this edgekit's `edgekit bundle`" if older else
                                                        "not an edgekit bundle (no signed {} header)".format(
                                                            MAGIC.decode().strip())))
        try:
            header = json.loads(head[len(MAGIC):].decode("ascii"))
            signed, sig = header["signed"], bytes.fromhex(header["signature"])
            key = trusted.get(header["key"])
            size, digest = signed["size"], signed["sha256"]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise EdgekitError("{}: unreadable signed header: refused".format(path)) from None
        if key is None:
            raise EdgekitError("{}: signed by key {}, which is not among the trusted keys ({}): refused".format(
                path, header["key"], ", ".join(sorted(trusted)) or "none"))
        try:
            key.verify(sig, canonical(signed))
        except Exception:  # noqa: BLE001 - cryptography's InvalidSignature, without importing it here
            raise EdgekitError("{}: the signature does not match the bundle's header (altered after signing): "
                               "refused".format(path)) from None
        if signed.get("format") != FORMAT or not isinstance(size, int) or not 0 < size <= max_bundle:
            raise EdgekitError("{}: bundle format {!r} of {!r} bytes, this edgekit reads format {} up to {} bytes: "
                               "refused".format(path, signed.get("format"), size, FORMAT, max_bundle))
        if total != HEADER_SIZE + size:
            raise EdgekitError("{}: {} bytes where the signature covers {} (cut short or appended to): refused".format(
                path, total, HEADER_SIZE + size))
        try:
            found = sha256(f, size)
        except EOFError:
            raise EdgekitError("{}: cut short while read: refused".format(path)) from None
        if found != digest:
            raise EdgekitError("{}: its content does not match the signed SHA-256 (altered after signing): "
                               "refused".format(path))
        f.seek(HEADER_SIZE)
        return f, header
    except BaseException:
        f.close()
        raise


def read_manifest(path: Path, trusted: Dict[str, Any], max_member: int = MAX_MEMBER) -> Dict[str, Any]:
    """The bundle's manifest, once the file is authenticated and its members are safe."""
    f, _ = authenticate(path, trusted)
    with f, _tar(path, f) as tar:
        return _checked(Path(path), tar, max_member)[0]


def _tar(path: Path, f: BinaryIO) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=f, mode="r:")
    except tarfile.TarError as exc:
        raise EdgekitError("{}: damaged bundle ({})".format(path, exc)) from None


def _checked(path: Path, tar: tarfile.TarFile, max_member: int):
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
    if MANIFEST not in members or not members[MANIFEST].isreg() or members[MANIFEST].size > 1 << 20:
        raise EdgekitError("{}: no {} (at most 1 MiB): refused".format(path, MANIFEST))
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST]).read().decode())
        files = manifest["files"]
        sizes = {name: int(entry["size"]) for name, entry in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EdgekitError("{}: unreadable {}: refused".format(path, MANIFEST)) from None
    if manifest.get("format") != FORMAT:
        raise EdgekitError("{}: bundle format {!r}, this edgekit reads {}".format(path, manifest.get("format"), FORMAT))
    payload = {n[len(PAYLOAD) + 1:]: m for n, m in members.items() if n.startswith(PAYLOAD + "/") and m.isreg()}
    if set(payload) != set(files):
        extra, missing = sorted(set(payload) - set(files)), sorted(set(files) - set(payload))
        raise EdgekitError("{}: payload differs from the signed list (extra: {}; missing: {}): refused".format(
            path, ", ".join(extra) or "-", ", ".join(missing) or "-"))
    longer = sorted(name for name, m in payload.items() if m.size != sizes[name])
    if longer:
        raise EdgekitError("{}: {} not of its listed size: refused".format(path, ", ".join(longer)))
    return manifest, payload


def _synced_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (and itself): its content is on disk before it is renamed."""
    for root, _, names in os.walk(str(folder)):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def open_bundle(path: Path, trusted: Dict[str, Any], dest: Path, max_member: int = MAX_MEMBER) -> Dict[str, Any]:
    """Authenticate the bundle and unpack its payload into ``dest``, which appears complete and on disk, or not
    at all; returns the manifest."""
    path, dest = Path(path), Path(dest)
    f, header = authenticate(path, trusted)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".{}.".format(dest.name), dir=str(dest.parent)))
    try:
        with f, _tar(path, f) as tar:
            manifest, payload = _checked(path, tar, max_member)
            for name, member in sorted(payload.items()):
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                h = new_sha256()
                left = manifest["files"][name]["size"]
                with tar.extractfile(member) as src, open(str(target), "wb") as out:
                    while left > 0:                   # never past the listed size
                        block = src.read(min(1 << 20, left))
                        if not block:
                            break
                        h.update(block)
                        out.write(block)
                        left -= len(block)
                if left or h.hexdigest() != manifest["files"][name]["sha256"]:
                    raise EdgekitError("{}: {} does not match its signed hash (altered): refused".format(path, name))
            (staging / MANIFEST).write_bytes(tar.extractfile(tar.getmember(MANIFEST)).read())
            (staging / SIGNED).write_text(json.dumps(header, sort_keys=True))
        if dest.exists():
            raise EdgekitError("{}: exists; a bundle is unpacked into a new folder".format(dest))
        _synced_tree(staging)
        os.rename(str(staging), str(dest))
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(str(staging), ignore_errors=True)
        raise
    return manifest
