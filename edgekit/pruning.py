"""Structured (channel) pruning with torch-pruning's dependency graph, and pruned checkpoints.

Removing whole channels shrinks every dense kernel that reads or writes them, so the speed-up
reaches every backend (ONNX Runtime, OpenVINO, TensorRT) with no sparse kernels. torch-pruning
(DepGraph) finds the groups of layers whose channels must go together (a residual sum, a
concatenation, an SE scale); edgekit chooses the channels by an importance criterion, keeps the
layers the recipe names untouched, and rounds widths to a multiple the kernels like.

A pruned checkpoint is an ordinary state dict: ``fit_to_state_dict`` narrows the recipe's full
model to the stored widths, so no pickled modules are ever loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgekit.errors import EdgekitError

if TYPE_CHECKING:        # torch is imported where a model is pruned, not where a recipe's section is read
    import torch
    import torch.nn as nn

IMPORTANCE = ("l1", "l2", "fpgm", "bn-scale", "lamp")


def _importance(name: str):
    import torch_pruning as tp

    if name in ("l1", "l2"):
        return tp.importance.GroupMagnitudeImportance(p=int(name[1]))
    if name == "fpgm":
        return tp.importance.FPGMImportance()
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    if name == "lamp":
        return tp.importance.LAMPImportance()
    raise EdgekitError(f"unknown pruning importance {name!r} (known: {', '.join(IMPORTANCE)})")


@dataclass(frozen=True)
class PruneSpec:
    """What to prune: the recipe's ``prune`` section."""
    ratio: float                        # fraction of each prunable group's channels removed
    importance: str = "l2"
    round_to: int = 8                   # kept widths are multiples of this (SIMD / Tensor Core widths)
    global_ranking: bool = False        # rank channels across layers instead of the same ratio per layer
    ignore: tuple[str, ...] = ()        # module name prefixes never pruned (their outputs keep their width)

    @classmethod
    def from_recipe(cls, section: dict, where: str) -> "PruneSpec":
        known = {"ratio", "importance", "round_to", "global_ranking", "ignore", "finetune", "max_drop", "min_speedup"}
        unknown = set(section) - known
        if unknown:
            raise EdgekitError(f"{where}: prune has unknown keys {', '.join(sorted(unknown))} "
                               f"(known: {', '.join(sorted(known))})")
        ratio = float(section.get("ratio", 0.0))
        if not 0.0 <= ratio < 1.0:
            raise EdgekitError(f"{where}: prune.ratio must be in [0, 1), got {ratio}")
        spec = cls(ratio, str(section.get("importance", "l2")), int(section.get("round_to", 8)),
                   bool(section.get("global_ranking", False)), tuple(section.get("ignore", ())))
        if spec.importance not in IMPORTANCE:
            raise EdgekitError(f"{where}: prune.importance {spec.importance!r} is not one of {', '.join(IMPORTANCE)}")
        return spec


def count_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(multiply-accumulates, parameters) of one forward pass on ``example``."""
    import torch
    import torch_pruning as tp

    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(params)


def prune_channels(model: nn.Module, example: torch.Tensor, spec: PruneSpec) -> dict:
    """Remove ``spec.ratio`` of the channels of ``model`` in place; returns MACs/params before and after."""
    import torch_pruning as tp

    model.eval()
    ignored = [m for name, m in model.named_modules()
               if name and any(name == p or name.startswith(p + ".") for p in spec.ignore)]
    missing = [p for p in spec.ignore if not any(n == p or n.startswith(p + ".") for n, _ in model.named_modules())]
    if missing:
        raise EdgekitError(f"prune.ignore names no module of the model: {', '.join(missing)}")
    before = count_macs(model, example)
    # the dependency graph is traced through autograd: no torch.no_grad() here
    pruner = tp.pruner.BasePruner(
        model, example, importance=_importance(spec.importance), pruning_ratio=spec.ratio,
        global_pruning=spec.global_ranking, ignored_layers=ignored, round_to=spec.round_to or None,
    )
    pruner.step()
    after = count_macs(model, example)
    return {"macs_before": before[0], "macs_after": after[0], "params_before": before[1], "params_after": after[1],
            "macs_kept": after[0] / before[0], "params_kept": after[1] / before[1]}


def _narrow(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Give one conv / linear / norm layer the shapes its stored tensors have."""
    import torch
    import torch.nn as nn

    def stored(name: str) -> torch.Tensor | None:
        return state.get(f"{prefix}{name}")

    weight = stored("weight")
    if isinstance(module, nn.modules.conv._ConvNd) and weight is not None:
        g = module.groups
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            module.in_channels, module.out_channels = weight.shape[0], weight.shape[1] * g
        else:
            module.out_channels, module.in_channels = weight.shape[0], weight.shape[1] * g
    elif isinstance(module, nn.Linear) and weight is not None:
        module.out_features, module.in_features = weight.shape
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        mean = stored("running_mean")
        if mean is not None:
            module.num_features = mean.shape[0]
    else:
        return
    for name, param in list(module.named_parameters(recurse=False)):
        value = stored(name)
        if value is not None and value.shape != param.shape:
            setattr(module, name, nn.Parameter(torch.empty_like(value), requires_grad=param.requires_grad))
    for name, buf in list(module.named_buffers(recurse=False)):
        value = stored(name)
        if buf is not None and value is not None and value.shape != buf.shape:
            module.register_buffer(name, torch.empty_like(value))


def fit_to_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Narrow every layer of the full-width ``model`` to the widths ``state`` (a pruned model's) has."""
    for name, module in model.named_modules():
        _narrow(module, state, f"{name}." if name else "")
    return model
