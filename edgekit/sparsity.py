"""2:4 semi-structured sparsity for Sparse Tensor Cores (Ampere and newer: Jetson Orin, desktop RTX/A-series).

In every group of four weights along a layer's input channels two are zero: for a convolution, for each
output channel and each kernel position, every four consecutive input channels (TensorRT's rule). TensorRT
runs such layers on sparse kernels when an engine is built with its sparse-weights flag; the model itself
stays an ordinary dense-looking ONNX file whose zeros are where the pattern puts them.

The masks come from NVIDIA's Model Optimizer (``modelopt.torch.sparsity``, magnitude search as NVIDIA's
ASP does it): edgekit decides which layers get one, fine-tunes with the masks enforced, then folds them
into the weights. A layer is left dense when TensorRT's sparse kernels cannot take it (grouped or
depthwise convolutions; output channels not a multiple of 8 or input channels not a multiple of 16, the
Tensor Core tile rule ASP and Model Optimizer apply) or when it is too small to gain: fewer than
``min_channels`` input or output channels, where a GEMM is bound by memory and launch overhead, not math.
That threshold is edgekit's, a recipe setting; TensorRT makes the final per-layer choice at build time
and says which layers it ran sparse (``trtexec --sparsity=enable --verbose``).
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.errors import EdgekitError

if TYPE_CHECKING:        # torch is imported where a model is masked, not where a recipe's section is read
    import torch
    import torch.nn as nn

PATTERN = "2:4"
KNOWN = {"pattern", "min_channels", "ignore", "finetune", "max_drop"}


@dataclass(frozen=True)
class SparsitySpec:
    """The recipe's ``sparsity`` section."""
    pattern: str = PATTERN
    min_channels: int = 64                  # layers narrower than this (in or out) stay dense: too small to gain
    ignore: tuple[str, ...] = ()            # module name prefixes left dense (e.g. heads whose outputs are the API)
    max_drop: float = 1.0                   # headline points the sparse, fine-tuned model may lose

    @classmethod
    def from_recipe(cls, section: dict, where: str) -> "SparsitySpec":
        unknown = set(section) - KNOWN
        if unknown:
            raise EdgekitError(f"{where}: sparsity has unknown keys {', '.join(sorted(unknown))} "
                               f"(known: {', '.join(sorted(KNOWN))})")
        pattern = str(section.get("pattern", PATTERN))
        if pattern != PATTERN:
            raise EdgekitError(f"{where}: sparsity.pattern {pattern!r}: only {PATTERN} (Sparse Tensor Cores) exists")
        spec = cls(pattern, int(section.get("min_channels", cls.min_channels)), tuple(section.get("ignore", ())),
                   float(section.get("max_drop", cls.max_drop)))
        if spec.min_channels < 16:
            raise EdgekitError(f"{where}: sparsity.min_channels must be >= 16 (the Tensor Core tile), "
                               f"got {spec.min_channels}")
        return spec


def layer_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates of every Conv2d and Linear for one ``example`` image (forward hooks)."""
    import torch
    import torch.nn as nn

    macs: dict[str, int] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            def hook(m, _inp, out, name=name):
                per_output = m.weight[0].numel()            # C/groups * R * S, or in_features
                macs[name] = macs.get(name, 0) + int(out[0].numel()) * per_output
            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return macs


def layer_table(model: nn.Module, spec: SparsitySpec, example: torch.Tensor) -> list[dict]:
    """Every Conv2d / Linear with whether it gets the 2:4 pattern and, when not, why."""
    import torch.nn as nn

    macs = layer_macs(model, example)
    rows = []
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        k, c = mod.weight.shape[0], mod.weight.shape[1]
        groups = getattr(mod, "groups", 1)
        if any(name == p or name.startswith(p + ".") for p in spec.ignore):
            why = "left dense by the recipe (sparsity.ignore)"
        elif groups != 1:
            why = f"grouped convolution (groups {groups}): no sparse kernel"
        elif k % 8 or c % 16:
            why = f"{k} outputs x {c} inputs: sparse Tensor Cores need outputs % 8 and inputs % 16"
        elif min(k, c) < spec.min_channels:
            why = f"too small to gain ({min(k, c)} < {spec.min_channels} channels)"
        else:
            why = ""
        rows.append({"layer": name, "type": type(mod).__name__, "shape": list(mod.weight.shape),
                     "macs": macs.get(name, 0), "sparse": not why, "reason": why})
    return rows


def sparse_share(rows: list[dict]) -> float:
    """Fraction of the network's Conv/Linear MACs in layers that get the pattern."""
    total = sum(r["macs"] for r in rows)
    return sum(r["macs"] for r in rows if r["sparse"]) / total if total else 0.0


def apply_masks(model: nn.Module, rows: list[dict]) -> nn.Module:
    """Compute 2:4 magnitude masks for the sparse layers of ``rows`` (Model Optimizer); the model keeps them
    enforced through training until ``fold``. In place; returns the model."""
    import modelopt.torch.sparsity as mts

    chosen = {r["layer"]: {} for r in rows if r["sparse"]}
    if not chosen:
        raise EdgekitError("no layer of this model qualifies for 2:4 sparsity (see the layer table)")
    rules = {kind: {"*": None, **chosen} for kind in ("nn.Conv2d", "nn.Linear")}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")           # its per-layer notes: edgekit's table says it
        mts.sparsify(model, mode=[("sparse_magnitude", rules)])
    return model


def fold(model: nn.Module) -> nn.Module:
    """The masks folded into the weights: an ordinary module whose zeros keep the pattern (in place)."""
    import modelopt.torch.sparsity as mts

    if any(hasattr(m, "_weight_mask") for m in model.modules()):
        mts.export(model)
    return model


def is_2_4(weight: np.ndarray) -> bool:
    """Whether every group of four input channels has at least two zeros (for each output and kernel position)."""
    w = np.asarray(weight)
    if w.ndim < 2 or w.shape[1] % 4:
        return False
    cols = np.moveaxis(w, 1, -1).reshape(-1, w.shape[1] // 4, 4)   # (K*R*S, C/4, 4)
    return bool(((cols == 0).sum(axis=-1) >= 2).all())


def onnx_sparse_layers(onnx_path: Path) -> list[str]:
    """Conv / Gemm nodes of an ONNX file whose weight initializer holds the 2:4 pattern (what TensorRT's
    sparse-weights flag can use). Gemm weights are read as (outputs, inputs), honouring ``transB``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    weights = {i.name: i for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 2 or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i for a in node.attribute):
            w = w.T
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        if groups == 1 and w.ndim >= 2 and w.shape[0] % 8 == 0 and w.shape[1] % 16 == 0 and is_2_4(w):
            found.append(node.name or node.output[0])
    return found
