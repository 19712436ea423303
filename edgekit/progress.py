"""Progress bars (tqdm on stderr), silenced with EDGEKIT_NO_PROGRESS=1 or when not wanted."""
from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bar(items: Iterable[T], desc: str, total: int | None = None, enabled: bool = True, **kw) -> tqdm:
    disable = not enabled or os.environ.get("EDGEKIT_NO_PROGRESS") == "1"
    return tqdm(items, desc=desc, total=total, disable=disable, leave=False, dynamic_ncols=True, **kw)
