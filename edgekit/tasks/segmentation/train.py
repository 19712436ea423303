"""Segmentation training: images and masks at the network's resolution, flips and grey-level jitter
(seeds/004: vertical flips, HSV, brightness and contrast), BCE + Dice on the mask (cross-entropy +
the classes' mean Dice when per class), and for LSA-Net the location loss on LAM's map and the
feature-difference loss between SDM's branches."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from edgekit.camera.post.segmentation import postprocess
from edgekit.data.recipe_data import SplitData
from edgekit.distributed import World, rank_batches
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.tasks.segmentation.data import bounding_rectangles, read_masked
from edgekit.tasks.segmentation.metrics import split_figures
from edgekit.tasks.segmentation.spec import LossWeights, SegmentationSpec


@dataclass(frozen=True)
class MaskAugment:
    vflip: float = 0.5         # probability of a vertical flip (the paper's)
    hflip: float = 0.5         # a strip or tile has no left or right either
    brightness: float = 0.2    # grey-level offset drawn from +-brightness x 255
    contrast: float = 0.2      # gain drawn from 1 +- contrast

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.vflip:
            image, mask = image[::-1], mask[::-1]
        if rng.random() < self.hflip:
            image, mask = image[:, ::-1], mask[:, ::-1]
        gain = 1.0 + rng.uniform(-self.contrast, self.contrast)
        offset = rng.uniform(-self.brightness, self.brightness) * 255.0
        mean = float(image.mean())
        image = np.clip((image.astype(np.float32) - mean) * gain + mean + offset, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def bce_dice(logits: torch.Tensor, target: torch.Tensor, bce_share: float) -> torch.Tensor:
    """loss_seg (seeds/004, Eq. 4): BCE weighted by ``bce_share`` plus the soft Dice loss per image."""
    logits, target = logits.float(), target.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).flatten(1).sum(1)
    dice = (2 * inter + 1.0) / (p.flatten(1).sum(1) + target.flatten(1).sum(1) + 1.0)
    return bce_share * bce + (1.0 - dice).mean()


def ce_dice(logits: torch.Tensor, target: torch.Tensor, ce_share: float) -> torch.Tensor:
    """loss_seg per class: cross-entropy over the background and the classes weighted by ``ce_share``, plus
    the soft Dice loss of each class present in the batch's truth or prediction, averaged."""
    logits = logits.float()
    ce = F.cross_entropy(logits, target)
    p = torch.softmax(logits, 1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (p * onehot).sum((0, 2, 3))
    total = p.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + 1.0) / (total + 1.0)
    return ce_share * ce + (1.0 - dice).mean()


def seg_loss(logits: torch.Tensor, target: torch.Tensor, share: float) -> torch.Tensor:
    """BCE + Dice on a binary network's one map, CE + Dice on a per-class network's; ``target`` (N, 1, H, W)
    holds class indices (0 background)."""
    if logits.shape[1] == 1:
        return bce_dice(logits, (target > 0).float(), share)
    return ce_dice(logits, target[:, 0].long(), share)


def feature_difference(v1: torch.Tensor, v2: torch.Tensor, epsilon: float) -> torch.Tensor:
    """loss_diff (seeds/004, Eq. 3): mean over the batch of 1 / (MSE between the flattened V1, V2 + eps);
    falls as the two branches' features move apart."""
    mse = (v1.float() - v2.float()).pow(2).flatten(1).mean(1)
    return (1.0 / (mse + epsilon)).mean()


def segmentation_loss(outputs, mask: torch.Tensor, rect: torch.Tensor, w: LossWeights
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    seg = seg_loss(outputs[0], mask, w.bce)
    if len(outputs) == 1:                      # the plain U-Net
        return seg, {"seg": seg.item()}
    loc_logits, v1, v2 = outputs[1:]
    loc = bce_dice(loc_logits, F.adaptive_max_pool2d(rect, loc_logits.shape[-2:]), w.bce)
    diff = feature_difference(v1, v2, w.epsilon)
    total = w.seg * seg + w.loc * loc + w.diff * diff
    return total, {"seg": seg.item(), "loc": loc.item(), "diff": diff.item()}


class MaskItems(torch.utils.data.Dataset):
    """Item i of an epoch: augmented with rng (seed, epoch, i), pre-processed, with its mask and rectangles."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], pre, aug: MaskAugment | None,
                 seed: int, epoch: int) -> None:
        self.images, self.masks, self.pre, self.aug, self.seed, self.epoch = images, masks, pre, aug, seed, epoch

    def __len__(self) -> int:
        return len(self.images)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image i and its mask, augmented for this epoch."""
        image, mask = self.images[i], self.masks[i]
        if self.aug is not None:
            image, mask = self.aug(image, mask, np.random.default_rng([self.seed, self.epoch, i]))
        return image, mask

    def __getitem__(self, i: int):
        image, mask = self.pair(i)
        m = mask.astype(np.int64)[None]
        return (torch.from_numpy(self.pre(image)), torch.from_numpy(m),
                torch.from_numpy(bounding_rectangles(mask)[None]))


def at_size(images: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Training images resized once, as the pre-processing would: augmentation then works at the network's size."""
    return [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) if im.shape != (size, size) else im
            for im in images]


def mask_augment(recipe: Recipe) -> MaskAugment | None:
    cfg = recipe.train.get("augment")
    if not cfg:
        return None
    try:
        return MaskAugment() if cfg is True else MaskAugment(**cfg)
    except TypeError as exc:
        raise EdgekitError(f"{recipe.path}: train.augment: {exc}") from None


class SegmentationTraining:
    headline = "mean_iou"
    label = "test mean IoU %"

    def __init__(self, recipe: Recipe, data: SplitData, seed: int) -> None:
        self.spec = SegmentationSpec.from_recipe(recipe)
        self.pre, self.seed = recipe.preprocess, seed
        size = recipe.preprocess.size
        self.aug = mask_augment(recipe)
        self.groups = data.dataset.classes
        train = read_masked(data.train, self.groups, size, self.spec, "reading train images and masks")
        self.images = at_size(train.images, size)
        self.masks = train.masks
        self.test = read_masked(data.test, self.groups, size, self.spec, "reading test images and masks")
        self.x_test = self.pre.batch(self.test.images)

    def batches(self, epoch: int, batch_size: int, workers: int = 0, shard: World = World()):
        items = MaskItems(self.images, self.masks, self.pre, self.aug, self.seed, epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(items)).tolist()
        return torch.utils.data.DataLoader(items, batch_sampler=rank_batches(order, batch_size, len(order) > batch_size,
                                                                             shard), num_workers=workers)

    def loss(self, outputs, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        return segmentation_loss(outputs, batch[1], batch[2], self.spec.loss)

    def evaluate(self, model: torch.nn.Module, device: torch.device, batch: int = 8) -> dict[str, float]:
        model.eval()
        preds = []
        with torch.inference_mode():
            for i in range(0, len(self.x_test), batch):
                logits = model(torch.from_numpy(self.x_test[i : i + batch]).to(device)).float().cpu().numpy()
                preds += [s.classes for s in postprocess(logits, self.spec.postprocess)]
        f = split_figures(preds, self.test.masks, self.test.groups, self.groups, self.spec.classes)
        keys = ("mean_iou_per_image", "mean_iou", "defect_iou_per_image", "defect_iou", "dice", "pixel_accuracy")
        return {k: f[k] for k in keys if f[k] is not None}
