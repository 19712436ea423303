"""Reading a torch file (checkpoint or weights) safely: tensors only, one error line naming the file."""
from __future__ import annotations

import gzip
import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from edgekit.errors import EdgekitError


def load_tensors(path: Path | str) -> Any:
    """``torch.load`` with ``weights_only`` (a ``.gz`` file decompressed first). A missing, empty or unreadable
    file, or one whose pickle would import and call code, is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise EdgekitError(f"{path}: empty file, not a torch checkpoint")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported GLOBAL (\S+)", str(exc))
        if found:  # a pickle that would import and call something on load
            raise EdgekitError(f"{path}: refused: it would import {found.group(1)} when loaded, and loading such "
                               "objects can run code (save a state dict: torch.save(model.state_dict(), ...))") from None
        raise EdgekitError(f"{path}: not a torch checkpoint (unreadable pickle)") from None
    except Exception as exc:  # zip, EOF, gzip and torch's own errors
        raise EdgekitError(f"{path}: not a torch checkpoint ({exc.__class__.__name__})") from None
