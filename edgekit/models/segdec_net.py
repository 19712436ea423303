"""SegDec-Net as seeds/001 improves it (Table 2): a segmentation subnet and a decision subnet on its
features, with SE attention and atrous convolutions.

Segmentation subnet: 11 convolutions, each with normalisation (BatchNorm: the paper's "feature
normalisation" is left undefined; BN folds into the convolution at export) and ReLU, and 3 max-pools:
2 x 32, pool, 3 x 64, pool, 4 x 64, pool, then 1024 channels, then a 1x1 convolution to one channel, the
segmentation map (logits) at 1/8 of the input. The first nine are 3x3 with dilation 2 (for SegDec's
5x5), the tenth 3x3 with dilation 7 (for its 15x15); ``dilated=False`` builds the original kernels. SE
blocks (reduction 16 from 64 channels up, 4 below) follow the 3rd to 10th convolutions.

Decision subnet: the 1024 features and the segmentation map (1025 channels) through three (max-pool,
3x3 dilation-2 convolution) stages to 8, 16, 32 channels; global max and average pooling of those 32
channels and of the segmentation map give 66 values; one fully connected layer gives the defect logit.
``decision_gradient`` scales the decision loss's gradient into the segmentation subnet during training
(1: end to end as the paper; 0: isolated, as the public mixed-supervision code's gradient adjustment);
it changes nothing in the exported graph.

Outputs, in training and export alike: (segmentation logits (N, 1, H/8, W/8), decision logit (N, 1)).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgekit.models.registry import register_model


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


class SE(nn.Module):
    """Squeeze-and-excitation on a block's output (1x1 convolutions: no reshape in the graph)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // (16 if channels >= 64 else 4), 4)
        self.fc1, self.fc2 = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


def conv(cin: int, cout: int, kernel: int, dilation: int, se: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
              nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, SE(cout)) if se else nn.Sequential(*layers)


class SegDecNet(nn.Module):
    def __init__(self, in_channels: int = 1, width: float = 1.0, se: bool = True, dilated: bool = True,
                 decision_gradient: float = 1.0) -> None:
        super().__init__()
        c32, c64, c1024 = (max(4, int(round(c * width))) for c in (32, 64, 1024))
        k, d = (3, 2) if dilated else (5, 1)
        plan = [(c32, "c"), (c32, "c"), (None, "pool"), (c64, "c"), (c64, "c"), (c64, "c"), (None, "pool"),
                (c64, "c"), (c64, "c"), (c64, "c"), (c64, "c"), (None, "pool")]
        layers, cin, n = [], in_channels, 0
        for cout, kind in plan:
            if kind == "pool":
                layers.append(nn.MaxPool2d(2))
                continue
            n += 1
            layers.append(conv(cin, cout, k, d, se and n >= 3))
            cin = cout
        layers.append(conv(cin, c1024, 3 if dilated else 15, 7 if dilated else 1, se))      # the 10th
        self.features = nn.Sequential(*layers)
        self.seg_head = nn.Conv2d(c1024, 1, 1)                                              # the 11th
        dk, dd = (3, 2) if dilated else (5, 1)
        self.decision = nn.Sequential(
            nn.MaxPool2d(2), conv(c1024 + 1, 8, dk, dd, False),
            nn.MaxPool2d(2), conv(8, 16, dk, dd, False),
            nn.MaxPool2d(2), conv(16, 32, dk, dd, False))
        self.fc = nn.Linear(66, 1)
        self.decision_gradient = float(decision_gradient)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        seg = self.seg_head(features)
        s = seg
        if self.training and self.decision_gradient != 1.0:
            features, s = (_ScaleGradient.apply(t, self.decision_gradient) for t in (features, seg))
        d = self.decision(torch.cat([features, s], 1))
        pooled = torch.cat([F.adaptive_max_pool2d(d, 1), F.adaptive_avg_pool2d(d, 1),
                            F.adaptive_max_pool2d(s, 1), F.adaptive_avg_pool2d(s, 1)], 1).flatten(1)
        return seg, self.fc(pooled)


@register_model("segdec_net")
def segdec_net(in_channels: int = 1, width: float = 1.0, se: bool = True, dilated: bool = True,
               decision_gradient: float = 1.0) -> SegDecNet:
    return SegDecNet(in_channels, width, se, dilated, decision_gradient)
