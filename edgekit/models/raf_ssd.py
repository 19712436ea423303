"""RAF-SSD (seeds/000): SSD on ResNet-50 with DSSD-style fusion and SE attention on every map.

The paper speaks in the VGG-SSD layer names; on ResNet-50 edgekit maps them as follows
(input S, maps of ceil(S/8) .. ceil(S/256) cells; 32/16/8/4/2/1 at S = 256):

=========  =========================================  ========  =========
paper      here                                       stride    channels
=========  =========================================  ========  =========
Conv4_3    ``trunk.layer2`` (ResNet conv3_x)          8         512
Conv7      ``trunk.layer3`` (ResNet conv4_x)          16        1024
Conv8_2    ``extras.0``: 1x1 256, 3x3/2 512           32        512
Conv9_2    ``extras.1``: 1x1 128, 3x3/2 256           64        256
Conv10_2   ``extras.2``: 1x1 128, 3x3/2 256           128       256
Conv11_2   ``extras.3``: 1x1 128, 3x3/2 256           256       256
=========  =========================================  ========  =========

Fusion (the paper's pairs Conv3_x + Conv8_2 and Conv7 + Conv10_2): the deeper map goes through
transposed convs (4x4, stride 2, padding 1) until it covers the shallow map (cropped to it when
S is not a power of two), a 1x1 conv + BN brings it to the shallow map's channels, the two are
summed and a ReLU follows. Every prediction map then passes an SE block (GAP, 1x1 C -> C/4, ReLU,
1x1 C/4 -> C, sigmoid, channel scaling) before the 3x3 SSD heads. ``layer4`` is not used.

``fusion=False, se=False`` gives the plain SSD-ResNet50 baseline of the paper's comparison.

Outputs: ``loc`` (N, P, 4) box offsets against the priors and ``conf`` (N, P, num_classes + 1)
logits, background first. Decoding, softmax and NMS are post-processing, shared by every backend
(``edgekit.tasks.detection``). The graph holds only Conv, ConvTranspose, BatchNorm (folded at
export), ReLU, Add, Mul, Sigmoid, GlobalAveragePool, Slice, Transpose, Reshape and Concat.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn

from edgekit.models.registry import register_model
from edgekit.models.resnet import ResNet50Trunk

# (1x1 reduce, 3x3 stride-2 out) channels of the four extra blocks (NVIDIA's SSD-ResNet50 widths).
EXTRAS = ((256, 512), (128, 256), (128, 256), (128, 256))
# Paper name of each prediction map, in order.
MAP_NAMES = ("conv3_x", "conv4_x", "conv8_2", "conv9_2", "conv10_2", "conv11_2")
# (shallow map, deep map) fused, as indices into MAP_NAMES: Conv3_x + Conv8_2, Conv7 + Conv10_2.
FUSED_PAIRS = ((0, 2), (1, 4))
FUSION_WIDTH = 256


def map_sizes(image_size: int) -> list[int]:
    """Side of each prediction map for a square input: ceil(S / 2^k) for k = 3 .. 8."""
    return [math.ceil(image_size / 2**k) for k in range(3, 9)]


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Fusion(nn.Module):
    """Upsample the deep map by ``stages`` transposed convs, 1x1 conv to the shallow width, sum, ReLU."""

    def __init__(self, deep_channels: int, shallow_channels: int, stages: int, width: int = FUSION_WIDTH) -> None:
        super().__init__()
        ups: list[nn.Module] = []
        cin = deep_channels
        for _ in range(stages):
            ups += [nn.ConvTranspose2d(cin, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True)]
            cin = width
        self.up = nn.Sequential(*ups)
        self.unify = nn.Sequential(nn.Conv2d(width, shallow_channels, 1, bias=False), nn.BatchNorm2d(shallow_channels))

    def forward(self, shallow: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        up = self.up(deep)
        h, w = shallow.shape[-2:]
        if up.shape[-2:] != shallow.shape[-2:]:
            up = up[:, :, :h, :w]
        return torch.relu(shallow + self.unify(up))


class SqueezeExcite(nn.Module):
    """Channel attention of seeds/000 eq. 1-3 (reduction 4), with 1x1 convs so no reshape is needed."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))


class RafSSD(nn.Module):
    """SSD detector on a ResNet-50 trunk; see the module docstring for the layer mapping."""

    def __init__(self, num_classes: int = 6, boxes_per_cell: int = 4, image_size: int = 256, fusion: bool = True,
                 se: bool = True) -> None:
        super().__init__()
        self.num_classes, self.boxes_per_cell, self.image_size = num_classes, boxes_per_cell, image_size
        self.trunk = ResNet50Trunk(last="layer3")
        cin = self.trunk.channels["layer3"]
        self.extras = nn.ModuleList()
        for mid, cout in EXTRAS:
            self.extras.append(nn.Sequential(conv_bn_relu(cin, mid, 1), conv_bn_relu(mid, cout, 3, stride=2)))
            cin = cout
        self.channels = [self.trunk.channels["layer2"], self.trunk.channels["layer3"], *(c for _, c in EXTRAS)]
        sizes = map_sizes(image_size)
        self.fusions = nn.ModuleDict()
        if fusion:
            for shallow, deep in FUSED_PAIRS:
                stages = math.ceil(math.log2(sizes[shallow] / sizes[deep]))
                self.fusions[str(shallow)] = Fusion(self.channels[deep], self.channels[shallow], stages)
        self.attention = nn.ModuleList(SqueezeExcite(c) if se else nn.Identity() for c in self.channels)
        a = boxes_per_cell
        self.loc = nn.ModuleList(nn.Conv2d(c, a * 4, 3, padding=1) for c in self.channels)
        self.conf = nn.ModuleList(nn.Conv2d(c, a * (num_classes + 1), 3, padding=1) for c in self.channels)
        self._init_new_layers()

    def _init_new_layers(self) -> None:
        for part in (self.extras, self.fusions, self.attention, self.loc, self.conf):
            for m in part.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        for head in (*self.loc, *self.conf):  # small heads: the first losses stay moderate from scratch
            nn.init.normal_(head.weight, std=0.01)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        stages = self.trunk(x)
        maps = [stages["layer2"], stages["layer3"]]
        for block in self.extras:
            maps.append(block(maps[-1]))
        fused = list(maps)
        for shallow, deep in FUSED_PAIRS:
            if str(shallow) in self.fusions:
                fused[shallow] = self.fusions[str(shallow)](maps[shallow], maps[deep])
        return [att(m) for att, m in zip(self.attention, fused)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        locs, confs = [], []
        k = self.num_classes + 1
        for m, loc, conf in zip(self.feature_maps(x), self.loc, self.conf):
            cells = m.shape[-2] * m.shape[-1] * self.boxes_per_cell
            # (N, A*4, H, W) -> (N, H*W*A, 4): prior order is map, row, column, aspect ratio.
            locs.append(loc(m).permute(0, 2, 3, 1).reshape(-1, cells, 4))
            confs.append(conf(m).permute(0, 2, 3, 1).reshape(-1, cells, k))
        return torch.cat(locs, 1), torch.cat(confs, 1)

    def load_imagenet_trunk(self, path: str | Path) -> int:
        """ImageNet ResNet-50 weights (torchvision layout) into the trunk; returns tensors loaded."""
        return self.trunk.load_torchvision(path)


@register_model("raf_ssd_resnet50", map_sizes=map_sizes)
def raf_ssd_resnet50(num_classes: int = 6, boxes_per_cell: int = 4, image_size: int = 256) -> RafSSD:
    return RafSSD(num_classes, boxes_per_cell, image_size, fusion=True, se=True)


@register_model("ssd_resnet50", map_sizes=map_sizes)
def ssd_resnet50(num_classes: int = 6, boxes_per_cell: int = 4, image_size: int = 256) -> RafSSD:
    return RafSSD(num_classes, boxes_per_cell, image_size, fusion=False, se=False)
