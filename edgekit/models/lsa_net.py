"""LSA-Net (seeds/004) and the plain U-Net of its ablation, on one skeleton.

The skeleton is Table 1's U-Net: five VGG blocks (two 3x3 conv + BN + ReLU) of 32/64/128/256/512
channels, 2x2 max-pools between them, and a decoder that upsamples, concatenates the encoder's
map of the same scale and applies a VGG block, down to a 1x1 conv giving one defect logit per
pixel (binary), or with ``num_classes`` > 1 a background logit and one per class (softmax).
LSA-Net adds three modules (the paper's Fig. 4 does not survive in the text, so their places are
chosen here and written down):

- LAM (location attention) on the shallow features, after encoder block 2 (1/2 scale): VGG block,
  1x1 conv, row and column strip pooling (means over the width and over the height), their outer
  product per channel as the location map (Y_i in C'xHxW, so the paper's n groups reduce to
  channels), a VGG block, added to the backbone's features. A 1x1 conv on it predicts the defect's
  bounding rectangles (``loss_loc``, training only).
- SDM (shape detection) in the deep features, after encoder block 4 (1/8 scale; 32x32 at 256 px as
  Tables 2-3): SPPM (VGG block, a pyramid of 3x3 and 5x5 average pools, each at its own stride, so 11x11
  and 7x7 cells at 32x32, upsampled back by its whole factor and cropped, concatenated, 1x1 conv, VGG block)
  -> V1 (each pixel holds the mean of its own cell: Table 2's "Upsample"), LSPM (two 1x3 and two 3x1 conv layers, max pools of 1x(W/2) and (H/2)x1, upsampled,
  added, VGG block) -> V2; concat(V1, V2) -> VGG block back to the block's width. V1 and V2 are
  returned in training for the feature-difference loss.
- FEM (fine extraction) on the bottleneck (after block 5): 3x3 convs of dilation 2 and 4,
  concatenated, 1x1 conv.

In ``eval()`` the network returns the logit map alone (what is exported and deployed); in
``train()`` a tuple (logits, location logits, V1, V2) for LSA-Net, (logits,) for the U-Net.
Every upsampling is nearest-neighbour by a whole factor (ONNX Resize with constant scales), every
pooling has a static kernel, the graph has no Shape arithmetic: TensorRT 8.2 and later parse it.
The input size must be a multiple of 16 (four 2x2 pools, and LSPM's half-size strips).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgekit.models.registry import register_model


def conv_bn_relu(cin: int, cout: int, kernel: int | tuple[int, int] = 3, dilation: int = 1) -> nn.Sequential:
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    pad = (dilation * (k[0] // 2), dilation * (k[1] // 2))
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def vgg_block(cin: int, cout: int) -> nn.Sequential:
    """VGG_B: two 3x3 conv + BN + ReLU."""
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


def location_map(f: torch.Tensor) -> torch.Tensor:
    """Row strip means (C x H x 1) times column strip means (C x 1 x W): per channel, the outer product that
    lights up where a defect's rows and columns cross (seeds/004, Fig. 5)."""
    return f.mean(dim=3, keepdim=True) * f.mean(dim=2, keepdim=True)


class LAM(nn.Module):
    """Location attention: strip pooling along rows and columns, their outer product as a location map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fuse_in = vgg_block(channels, channels)
        self.reduce = nn.Conv2d(channels, channels, 1)
        self.fuse_out = vgg_block(channels, channels)
        self.locate = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fuse_out(location_map(self.reduce(self.fuse_in(x))))
        return x + y, self.locate(y)


def pyramid_level(x: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """SPPM's square pool of ``k``: the mean of each k x k cell (a last, partial cell over what it holds), each
    cell's mean copied back over its pixels (nearest upsampling by the whole factor k, cropped to h x w)."""
    pooled = F.avg_pool2d(x, k, stride=k, ceil_mode=True, count_include_pad=False)
    return F.interpolate(pooled, scale_factor=float(k), mode="nearest")[..., :h, :w]


class SDM(nn.Module):
    """Shape detection: square (SPPM) and strip (LSPM) receptive fields, fused; V1, V2 kept for loss_diff."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.sppm_in = vgg_block(channels, width)
        self.sppm_out = nn.Sequential(nn.Conv2d(2 * width, width, 1), vgg_block(width, width))
        self.rows_conv = nn.Sequential(conv_bn_relu(channels, width, (1, 3)), conv_bn_relu(width, width, (1, 3)))
        self.cols_conv = nn.Sequential(conv_bn_relu(channels, width, (3, 1)), conv_bn_relu(width, width, (3, 1)))
        self.lspm_out = vgg_block(width, width)
        self.fuse = vgg_block(2 * width, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        s = self.sppm_in(x)
        v1 = self.sppm_out(torch.cat([pyramid_level(s, k, h, w) for k in (3, 5)], 1))
        if h % 2 or w % 2:
            raise ValueError(f"SDM needs an even map size, got {h}x{w}: the input size must be a multiple of 16")
        r = F.max_pool2d(self.rows_conv(x), (1, w // 2))          # local row strips: 1 x W/2 -> H x 2
        c = F.max_pool2d(self.cols_conv(x), (h // 2, 1))          # local column strips: H/2 x 1 -> 2 x W
        r = F.interpolate(r, scale_factor=(1.0, float(w // 2)), mode="nearest")
        c = F.interpolate(c, scale_factor=(float(h // 2), 1.0), mode="nearest")
        v2 = self.lspm_out(r + c)
        return self.fuse(torch.cat([v1, v2], 1)), v1, v2


class FEM(nn.Module):
    """Fine extraction: dilated 3x3 convs (rates 2 and 4), concatenated, 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.d2 = conv_bn_relu(channels, channels, dilation=2)
        self.d4 = conv_bn_relu(channels, channels, dilation=4)
        self.project = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                     nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([self.d2(x), self.d4(x)], 1))


class SegmentationUNet(nn.Module):
    """Table 1's U-Net; with ``modules`` True, LSA-Net (LAM after block 2, SDM after block 4, FEM after block 5)."""

    def __init__(self, in_channels: int = 3, base: int = 32, modules: bool = True, sdm_width: int = 384,
                 num_classes: int = 1) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(5)]                  # 32, 64, 128, 256, 512
        self.encoder = nn.ModuleList(vgg_block(cin, cout) for cin, cout in zip([in_channels, *widths], widths))
        self.decoder = nn.ModuleList(vgg_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(widths[0], 1 if num_classes == 1 else num_classes + 1, 1)
        self.lam = LAM(widths[1]) if modules else None
        self.sdm = SDM(widths[3], sdm_width * base // 32) if modules else None
        self.fem = FEM(widths[4]) if modules else None

    def forward(self, x: torch.Tensor):
        skips, aux = [], []
        for i, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if i else x)
            if i == 1 and self.lam is not None:
                x, loc = self.lam(x)
                aux.append(loc)
            if i == 3 and self.sdm is not None:
                x, v1, v2 = self.sdm(x)
                aux += [v1, v2]
            skips.append(x)
        if self.fem is not None:
            x = self.fem(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1])):
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1))
        logits = self.head(x)
        return (logits, *aux) if self.training else logits


@register_model("lsa_net")
def lsa_net(in_channels: int = 3, base: int = 32, sdm_width: int = 384, num_classes: int = 1) -> SegmentationUNet:
    return SegmentationUNet(in_channels, base, modules=True, sdm_width=sdm_width, num_classes=num_classes)


@register_model("unet")
def unet(in_channels: int = 3, base: int = 32, num_classes: int = 1) -> SegmentationUNet:
    return SegmentationUNet(in_channels, base, modules=False, num_classes=num_classes)
