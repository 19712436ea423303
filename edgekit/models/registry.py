"""Model registry: one module per architecture, registered by name (timm-style)."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from edgekit.errors import EdgekitError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``fn(**kwargs) -> nn.Module`` available as ``create_model(name)``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _MODELS:
        raise EdgekitError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
