"""Segmentation+decision training: images with their masks at the network's size, the image label from
the mask (defective when it holds a defect pixel), and per supervision mode which images keep a pixel
loss: every defect-free image (its empty mask is known), and of the positives none (weak), a seeded
choice of ``pixel_labels`` (mixed) or all (full). The loss is :mod:`.spec`'s, with theta by the epoch of
the epochs actually trained; epochs balanced by frequency sampling, labels dilated, the pixel loss weighted
by the distance to a defect's edge, the decision's gradient into the segmentation subnet by the recipe or the mode."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from edgekit.data.recipe_data import SplitData
from edgekit.distributed import World, rank_batches
from edgekit.recipes import Recipe
from edgekit.tasks.segdec.metrics import decision_figures
from edgekit.tasks.segdec.spec import DecisionSpec
from edgekit.tasks.segmentation.data import read_masked
from edgekit.tasks.segmentation.spec import SegmentationSpec
from edgekit.tasks.segmentation.train import MaskAugment, MaskItems, at_size, mask_augment


def pixel_labelled(labels: list[bool], spec: DecisionSpec, seed: int) -> np.ndarray:
    """Which images carry a pixel loss (gamma = 1): the defect-free ones and the positives the mode keeps."""
    labels = np.asarray(labels, bool)
    positives = np.flatnonzero(labels)
    keep = np.random.default_rng([seed, 1]).permutation(positives)[: spec.labelled_positives(len(positives))]
    out = ~labels
    out[keep] = True
    return out


def balanced_epoch(labels: list[bool], seed: int, epoch: int) -> np.ndarray:
    """The images of ``epoch`` (0-based) when balanced: every positive, and as many negatives (all of them when
    fewer) drawn without replacement by frequency sampling: from the second epoch on, a negative's chance falls
    steeply with the times it was drawn before (SegDec's reference: p = 1 - n / max n, shifted so the median is
    1, raised to 4 ln N), so every negative is seen before any is seen twice. Replayed from epoch 0: the same
    epoch gives the same images after a resume."""
    labels = np.asarray(labels, bool)
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    take, drawn = min(len(positives), len(negatives)), np.zeros(len(negatives))
    chosen = np.arange(0)
    for e in range(epoch + 1):
        rng = np.random.default_rng([seed, 2, e])
        p = None
        if drawn.max() > 0:
            p = 1.0 - drawn / drawn.max()
            p = (p - np.median(p) + 1.0) ** (4.0 * math.log(len(negatives)))
            p = (p + 1e-12 * p.max()) / (p + 1e-12 * p.max()).sum()
        chosen = rng.choice(len(negatives), take, replace=False, p=p)
        drawn[chosen] += 1
    return np.concatenate([positives, negatives[chosen]])


def edge_weights(mask: np.ndarray, p: float | None, top: float) -> np.ndarray:
    """The pixel loss's weight: inside a defect (d / d_max)^p x ``top``, d the distance to its edge (OpenCV's exact
    Euclidean transform), d_max the image's largest; 1 outside, and everywhere when ``p`` is None."""
    if p is None or not mask.any():
        return np.ones(mask.shape, np.float32)
    d = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    w = (d / d.max()) ** p * top
    w[mask == 0] = 1.0
    return w.astype(np.float32)


def segdec_loss(outputs, target: torch.Tensor, label: torch.Tensor, gamma: torch.Tensor, theta: float,
                spec: DecisionSpec, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """seeds/001 Eq. 5 per image, averaged; ``target`` is the mask (N, 1, S, S) at the input's size (max-pooled
    to the map's), ``weight`` each pixel's loss weight at the same size (averaged to the map's)."""
    seg_logits, dec_logit = outputs[0].float(), outputs[1].float()
    small = F.adaptive_max_pool2d(target.float(), seg_logits.shape[-2:])
    if spec.seg_loss == "mse":
        pixels = (torch.sigmoid(seg_logits) - small).pow(2)
    else:
        pixels = F.binary_cross_entropy_with_logits(seg_logits, small, reduction="none")
    if weight is not None:
        pixels = pixels * F.adaptive_avg_pool2d(weight.float(), seg_logits.shape[-2:])
    seg = pixels.flatten(1).mean(1)
    dec = F.binary_cross_entropy_with_logits(dec_logit[:, 0], label.float(), reduction="none")
    total = (theta * gamma.float() * seg + (1.0 - theta) * spec.delta * dec).mean()
    labelled = gamma.float().sum().clamp(min=1.0)
    return total, {"seg": ((gamma.float() * seg).sum() / labelled).item(), "dec": dec.mean().item(), "theta": theta}


class SegDecItems(MaskItems):
    """Item i of an epoch: the augmented image and mask, the image label, whether it has a pixel loss, and the
    pixel loss's weights."""

    def __init__(self, images, masks, labels, gamma, pre, aug: MaskAugment | None, seed: int, epoch: int,
                 spec: DecisionSpec) -> None:
        super().__init__(images, masks, pre, aug, seed, epoch)
        self.labels, self.gamma, self.spec = labels, gamma, spec

    def __getitem__(self, i: int):
        image, mask = self.pair(i)
        return (torch.from_numpy(self.pre(image)), torch.from_numpy(mask.astype(np.float32)[None]),
                torch.tensor(int(self.labels[i])), torch.tensor(bool(self.gamma[i])),
                torch.from_numpy(edge_weights(mask, self.spec.weight_p, self.spec.weight_max)[None]))


class SegDecTraining:
    headline = "ap"
    label = "test AP %"

    def __init__(self, recipe: Recipe, data: SplitData, seed: int) -> None:
        self.seg = SegmentationSpec.from_recipe(recipe)
        self.spec = DecisionSpec.from_recipe(recipe)
        self.pre, self.seed = recipe.preprocess, seed
        self.epochs = int(recipe.train["epochs"])         # until prepare() says how many are trained
        size = recipe.preprocess.size
        self.aug = mask_augment(recipe)
        groups = data.dataset.classes
        train = read_masked(data.train, groups, size, self.seg, "reading train images and masks", self.spec.dilate)
        self.images = at_size(train.images, size)
        self.masks = train.masks
        self.labels = [bool(m.any()) for m in self.masks]
        self.gamma = pixel_labelled(self.labels, self.spec, seed)
        test = read_masked(data.test, groups, size, self.seg, "reading test images and masks")
        self.x_test, self.y_test = self.pre.batch(test.images), np.array([m.any() for m in test.masks])
        self.epoch = 0
        self.epoch_size = (sum(self.labels) + min(sum(self.labels), len(self.labels) - sum(self.labels))
                           if self.spec.balanced else len(self.labels))

    def prepare(self, model: torch.nn.Module, settings: dict) -> None:
        """Before the first epoch: theta runs over the epochs trained; the decision's gradient by the recipe or the mode."""
        self.epochs = int(settings["epochs"])
        model.decision_gradient = self.spec.gradient

    def describe(self) -> dict:
        """What the manifest records of the supervision: the mode and which positives kept their masks."""
        positives = [i for i, y in enumerate(self.labels) if y]
        kept = [i for i in positives if self.gamma[i]]
        return {"supervision": {"mode": self.spec.supervision, "positives": len(positives),
                                "pixel_labelled_positives": len(kept), "negatives": len(self.labels) - len(positives),
                                "seed": self.seed, "schedule": self.spec.schedule, "beta": self.spec.beta,
                                "delta": self.spec.delta, "seg_loss": self.spec.seg_loss,
                                "decision_gradient": self.spec.gradient, "balanced": self.spec.balanced,
                                "epoch_images": self.epoch_size, "dilate": self.spec.dilate,
                                "weight_p": self.spec.weight_p, "weight_max": self.spec.weight_max,
                                "theta_last": self.spec.theta(self.epochs - 1, self.epochs),
                                "pixel_labelled_indices": kept}}

    def batches(self, epoch: int, batch_size: int, workers: int = 0, shard: World = World()):
        self.epoch = epoch                  # theta follows the epoch being trained
        items = SegDecItems(self.images, self.masks, self.labels, self.gamma, self.pre, self.aug, self.seed, epoch,
                            self.spec)
        chosen = balanced_epoch(self.labels, self.seed, epoch) if self.spec.balanced else np.arange(len(items))
        order = np.random.default_rng([self.seed, epoch]).permutation(chosen).tolist()
        return torch.utils.data.DataLoader(items, batch_sampler=rank_batches(order, batch_size, len(order) > batch_size,
                                                                             shard), num_workers=workers)

    def loss(self, outputs, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        return segdec_loss(outputs, batch[1], batch[2], batch[3], self.spec.theta(self.epoch, self.epochs), self.spec,
                           batch[4])

    def evaluate(self, model: torch.nn.Module, device: torch.device, batch: int = 16) -> dict[str, float]:
        model.eval()
        scores = []
        with torch.inference_mode():
            for i in range(0, len(self.x_test), batch):
                _, dec = model(torch.from_numpy(self.x_test[i : i + batch]).to(device))
                scores.append(torch.sigmoid(dec.float()[:, 0]).cpu().numpy())
        f = decision_figures(self.y_test, np.concatenate(scores), self.spec.threshold)
        return {k: f[k] for k in ("ap", "auc", "f_best", "f_at_threshold", "fp", "fn") if f[k] is not None}
