"""Ed25519 signing keys on the workstation: the private key signs bundles and never leaves it (file mode
0600); cameras trust the public halves (:mod:`edgekit.camera.trust`)."""
import os
from pathlib import Path
from typing import Dict, List

from edgekit.camera.trust import PUBLIC, _crypto, fingerprint, load_public, trusted  # noqa: F401 - keys in one place
from edgekit.errors import EdgekitError

PRIVATE = ".key"


def new_key(name: str, folder: Path) -> Path:
    """Write ``NAME.key`` (PKCS#8 PEM, mode 0600, never overwritten) and ``NAME.pub`` into ``folder``."""
    serialization, ed25519 = _crypto()
    if not name or "/" in name or name.startswith("."):
        raise EdgekitError("{!r}: a key name is a plain file name".format(name))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / (name + PRIVATE), folder / (name + PUBLIC)
    if private.exists() or public.exists():
        raise EdgekitError("{}: a key of that name exists; keys are never overwritten".format(private))
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(str(private), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # 0600 from the first byte
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private


def load_private(path: Path):
    serialization, ed25519 = _crypto()
    path = Path(path)
    if not path.is_file():
        raise EdgekitError("{}: signing key not found".format(path))
    if os.stat(str(path)).st_mode & 0o077:
        raise EdgekitError("{}: a private key readable by others is refused (chmod 600 it)".format(path))
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise EdgekitError("{}: not a PEM private key".format(path)) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EdgekitError("{}: not an Ed25519 key".format(path))
    return key


def listing(folder: Path) -> List[Dict[str, str]]:
    """Every key pair or public key in ``folder``: name, fingerprint, whether the private half is there."""
    out = []
    for pub in sorted(Path(folder).glob("*" + PUBLIC)):
        out.append({"name": pub.stem, "fingerprint": fingerprint(load_public(pub)),
                    "private": str(pub.with_suffix(PRIVATE)) if pub.with_suffix(PRIVATE).is_file() else "-"})
    return out
