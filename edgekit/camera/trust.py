"""The keys a camera trusts: Ed25519 public keys (the ``cryptography`` library) in its install folder's
``trusted/``; the private halves sign bundles on the workstation (:mod:`edgekit.deploy.keys`).

A key is named by its fingerprint: the first 16 hex digits of the SHA-256 of its raw 32 public bytes."""
from pathlib import Path
from typing import Dict

from edgekit.camera.bundle import new_sha256
from edgekit.errors import EdgekitError

PUBLIC = ".pub"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise EdgekitError("signing and verifying bundles needs the cryptography library (pip install "
                           "cryptography; on JetPack 4.6's Python 3.6: 'cryptography<41')") from None
    return serialization, ed25519


def fingerprint(public_key) -> str:
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return new_sha256(raw).hexdigest()[:16]


def load_public(path: Path):
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError):
        raise EdgekitError("{}: not a PEM public key".format(path)) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise EdgekitError("{}: not an Ed25519 public key".format(path))
    return key


def trusted(folder: Path) -> Dict[str, object]:
    """The public keys a camera trusts (every ``*.pub`` in ``folder``), by fingerprint."""
    keys = [load_public(p) for p in sorted(Path(folder).glob("*" + PUBLIC))]
    return {fingerprint(k): k for k in keys}
