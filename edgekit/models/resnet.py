"""ResNet-50 trunk (v1.5: stride on the 3x3 conv) in torchvision's module layout.

Keys match torchvision's ``resnet50`` (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so an
ImageNet state dict in that layout loads unchanged. Only the stages a model asks for are built:
a detector that stops at ``layer3`` carries no ``layer4`` weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from edgekit.errors import EdgekitError
from edgekit.torchfile import load_tensors

# (blocks, bottleneck width, stride) of ResNet-50's four stages; output channels are width x 4.
RESNET50_STAGES = {"layer1": (3, 64, 1), "layer2": (4, 128, 2), "layer3": (6, 256, 2), "layer4": (3, 512, 2)}
EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50Trunk(nn.Module):
    """Stem + ``layer1`` .. ``last`` of ResNet-50; ``forward`` returns the output of every stage."""

    def __init__(self, last: str = "layer3") -> None:
        super().__init__()
        if last not in RESNET50_STAGES:
            raise ValueError(f"last stage must be one of {list(RESNET50_STAGES)}, got {last!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stage_names: list[str] = []
        self.channels: dict[str, int] = {}
        cin = 64
        for name, (blocks, width, stride) in RESNET50_STAGES.items():
            layers = [Bottleneck(cin if i == 0 else width * EXPANSION, width, stride if i == 0 else 1)
                      for i in range(blocks)]
            self.add_module(name, nn.Sequential(*layers))
            cin = width * EXPANSION
            self.stage_names.append(name)
            self.channels[name] = cin
            if name == last:
                break
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Each residual branch starts as identity (Goyal et al. 2017): trains from scratch far more stably.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            out[name] = x
        return out

    def load_torchvision(self, path: str | Path) -> int:
        """Load the trunk's tensors from a torchvision-layout ``resnet50`` state dict.

        Keys of stages this trunk does not build (``layer4``, ``fc``) are ignored. Returns the
        number of tensors loaded (BatchNorm running statistics included).
        """
        path = Path(path)
        state = load_tensors(path)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise EdgekitError(f"{path}: expected a state dict, found {type(state).__name__}")
        own = self.state_dict()
        missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
        if missing:
            raise EdgekitError(f"{path}: not a torchvision resnet50 state dict (missing {missing[0]} "
                               f"and {len(missing) - 1} more)")
        for key in own:
            if key in state and tuple(state[key].shape) != tuple(own[key].shape):
                raise EdgekitError(f"{path}: {key} has shape {tuple(state[key].shape)}, "
                                   f"resnet50 needs {tuple(own[key].shape)}")
        self.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
        return sum(1 for k in own if k in state)
