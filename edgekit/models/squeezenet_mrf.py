"""SqueezeNet 1.0 with the multi-receptive-field head of seeds/002 (SDC-SN-ELF+MRF).

The trunk keeps torchvision's ``squeezenet1_0`` module layout (``features.N``), so an
ImageNet state dict in that layout loads unchanged. The head follows the authors' released
Caffe definition: dropout, conv10a (3x3, pad 1) and conv10b (1x1) to ``num_classes`` channels
each with ReLU, concatenation, global average pooling, conv11 (1x1) to ``num_classes``.
``mrf=False`` gives the SDC-SN baseline (torchvision's conv10 + ReLU + pool head).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from edgekit.errors import EdgekitError
from edgekit.torchfile import load_tensors
from edgekit.models.registry import register_model

# Modules of the trunk by the paper's names; used by recipes for ELF learning-rate multipliers.
PAPER_LAYER_NAMES = {
    "conv1": "features.0", "fire2": "features.3", "fire3": "features.4", "fire4": "features.5",
    "fire5": "features.7", "fire6": "features.8", "fire7": "features.9", "fire8": "features.10",
    "fire9": "features.12",
}


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


def squeezenet1_0_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 96, kernel_size=7, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(96, 16, 64, 64),
        Fire(128, 16, 64, 64),
        Fire(128, 32, 128, 128),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(256, 32, 128, 128),
        Fire(256, 48, 192, 192),
        Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(512, 64, 256, 256),
    )


class MRFHead(nn.Module):
    """conv10a (3x3) ++ conv10b (1x1) -> GAP -> conv11 (1x1)."""

    def __init__(self, cin: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.conv10a = nn.Conv2d(cin, num_classes, 3, padding=1)
        self.conv10b = nn.Conv2d(cin, num_classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv11 = nn.Conv2d(2 * num_classes, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        x = torch.cat([torch.relu(self.conv10a(x)), torch.relu(self.conv10b(x))], 1)
        return self.conv11(self.pool(x)).flatten(1)


class PlainHead(nn.Module):
    """SqueezeNet's own head: dropout, conv10 (1x1), ReLU, GAP."""

    def __init__(self, cin: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.conv10 = nn.Conv2d(cin, num_classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv10(self.dropout(x)))).flatten(1)


class SqueezeNetMRF(nn.Module):
    """Classifier returning logits ``(N, num_classes)``; softmax belongs to post-processing."""

    PAPER_LAYER_NAMES = PAPER_LAYER_NAMES

    def __init__(self, num_classes: int = 6, mrf: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = squeezenet1_0_features()
        head = MRFHead if mrf else PlainHead
        self.head = head(512, num_classes, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # Trunk: He (Kaiming) init as torchvision's SqueezeNet, which keeps the signal alive through
        # 26 ReLU convs when training from scratch (Xavier shrinks it ~500x by fire9). Head: Xavier,
        # as the paper initialises its new layers. Pretrained trunk weights overwrite the former.
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for m in self.head.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def load_imagenet_trunk(self, path: str | Path) -> int:
        """Load the ``features.*`` tensors of a torchvision-layout squeezenet1_0 state dict.

        Returns the number of tensors loaded. The 1000-class ``classifier.*`` is ignored.
        """
        path = Path(path)
        state = load_tensors(path)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise EdgekitError(f"{path}: expected a state dict, found {type(state).__name__}")
        trunk = {k: v for k, v in state.items() if k.startswith("features.")}
        own = self.features.state_dict()
        expected = {f"features.{k}" for k in own}
        missing = sorted(expected - set(trunk))
        if missing:
            raise EdgekitError(
                f"{path}: not a torchvision squeezenet1_0 state dict (missing {missing[0]} and "
                f"{len(missing) - 1} more)"
            )
        for key, value in trunk.items():
            local = key[len("features."):]
            if local in own and own[local].shape != value.shape:
                raise EdgekitError(
                    f"{path}: {key} has shape {tuple(value.shape)}, squeezenet1_0 needs {tuple(own[local].shape)}"
                )
        self.features.load_state_dict({k[len("features."):]: v for k, v in trunk.items() if k in expected})
        return len(expected)


@register_model("squeezenet1_0_mrf")
def squeezenet1_0_mrf(num_classes: int = 6, dropout: float = 0.5) -> SqueezeNetMRF:
    return SqueezeNetMRF(num_classes=num_classes, mrf=True, dropout=dropout)


@register_model("squeezenet1_0")
def squeezenet1_0(num_classes: int = 6, dropout: float = 0.5) -> SqueezeNetMRF:
    return SqueezeNetMRF(num_classes=num_classes, mrf=False, dropout=dropout)
