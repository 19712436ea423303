"""Where the bundled YAML data (recipes/, targets/) lives, installed or in a source checkout."""
from __future__ import annotations

import importlib.resources
from pathlib import Path


def bundled_dir(package: str, folder: str) -> Path:
    """The folder behind ``package`` (package data mapped by pyproject), else ``<repo>/<folder>``."""
    try:
        found = importlib.resources.files(package)
        candidate = Path(str(found))
        if not candidate.is_dir():  # a namespace package answers with a MultiplexedPath
            paths = getattr(found, "_paths", None)
            candidate = Path(str(paths[0])) if paths else candidate
        if candidate.is_dir():
            return candidate
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    return Path(__file__).resolve().parent.parent / folder
