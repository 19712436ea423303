"""Model registry: one module per architecture, registered by name (timm-style).

A registration may carry metadata that code outside the model needs without building it, e.g. a
detector's ``map_sizes(image_size)`` from which the post-processing derives its prior boxes.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from edgekit.errors import EdgekitError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_META: dict[str, dict[str, Any]] = {}


def register_model(name: str, **meta: Any) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``fn(**kwargs) -> nn.Module`` available as ``create_model(name)``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = fn
        _META[name] = meta
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def _known(name: str) -> None:
    if name not in _MODELS:
        raise EdgekitError(f"unknown model {name!r}; known: {', '.join(list_models())}")


def create_model(name: str, **kwargs) -> nn.Module:
    _known(name)
    return _MODELS[name](**kwargs)


def model_meta(name: str) -> dict[str, Any]:
    _known(name)
    return _META[name]
