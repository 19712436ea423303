"""Segmentation+decision training: images with their masks at the network's size, the image label from
the mask (defective when it holds a defect pixel), and per supervision mode which images keep a pixel
loss: every defect-free image (its empty mask is known), and of the positives none (weak), a seeded
choice of ``pixel_labels`` (mixed) or all (full). The loss is :mod:`.spec`'s, with theta by epoch."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.data.recipe_data import SplitData
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


def segdec_loss(outputs, target: torch.Tensor, label: torch.Tensor, gamma: torch.Tensor, theta: float,
                spec: DecisionSpec) -> tuple[torch.Tensor, dict[str, float]]:
    """seeds/001 Eq. 5 per image, averaged; ``target`` is the mask (N, 1, S, S) at the input's size."""
    seg_logits, dec_logit = outputs[0].float(), outputs[1].float()
    small = F.adaptive_max_pool2d(target.float(), seg_logits.shape[-2:])
    if spec.seg_loss == "mse":
        seg = (torch.sigmoid(seg_logits) - small).pow(2).flatten(1).mean(1)
    else:
        seg = F.binary_cross_entropy_with_logits(seg_logits, small, reduction="none").flatten(1).mean(1)
    dec = F.binary_cross_entropy_with_logits(dec_logit[:, 0], label.float(), reduction="none")
    total = (theta * gamma.float() * seg + (1.0 - theta) * spec.delta * dec).mean()
    labelled = gamma.float().sum().clamp(min=1.0)
    return total, {"seg": ((gamma.float() * seg).sum() / labelled).item(), "dec": dec.mean().item(), "theta": theta}


class SegDecItems(MaskItems):
    """Item i of an epoch: the augmented image and mask, the image label and whether it has a pixel loss."""

    def __init__(self, images, masks, labels, gamma, pre, aug: MaskAugment | None, seed: int, epoch: int) -> None:
        super().__init__(images, masks, pre, aug, seed, epoch)
        self.labels, self.gamma = labels, gamma

    def __getitem__(self, i: int):
        image, mask = self.pair(i)
        return (torch.from_numpy(self.pre(image)), torch.from_numpy(mask.astype(np.float32)[None]),
                torch.tensor(int(self.labels[i])), torch.tensor(bool(self.gamma[i])))


class SegDecTraining:
    headline = "ap"
    label = "test AP %"

    def __init__(self, recipe: Recipe, data: SplitData, seed: int) -> None:
        self.seg = SegmentationSpec.from_recipe(recipe)
        self.spec = DecisionSpec.from_recipe(recipe)
        self.pre, self.seed, self.epochs = recipe.preprocess, seed, int(recipe.train["epochs"])
        size = recipe.preprocess.size
        self.aug = mask_augment(recipe)
        groups = data.dataset.classes
        train = read_masked(data.train, groups, size, self.seg, "reading train images and masks")
        self.images = at_size(train.images, size)
        self.masks = train.masks
        self.labels = [bool(m.any()) for m in self.masks]
        self.gamma = pixel_labelled(self.labels, self.spec, seed)
        test = read_masked(data.test, groups, size, self.seg, "reading test images and masks")
        self.x_test, self.y_test = self.pre.batch(test.images), np.array([m.any() for m in test.masks])
        self.epoch = 0

    def describe(self) -> dict:
        """What the manifest records of the supervision: the mode and which positives kept their masks."""
        positives = [i for i, y in enumerate(self.labels) if y]
        kept = [i for i in positives if self.gamma[i]]
        return {"supervision": {"mode": self.spec.supervision, "positives": len(positives),
                                "pixel_labelled_positives": len(kept), "negatives": len(self.labels) - len(positives),
                                "seed": self.seed, "schedule": self.spec.schedule, "beta": self.spec.beta,
                                "delta": self.spec.delta, "seg_loss": self.spec.seg_loss,
                                "pixel_labelled_indices": kept}}

    def batches(self, epoch: int, batch_size: int, workers: int = 0):
        self.epoch = epoch                  # theta follows the epoch being trained
        items = SegDecItems(self.images, self.masks, self.labels, self.gamma, self.pre, self.aug, self.seed, epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(items)).tolist()
        return torch.utils.data.DataLoader(items, batch_size=batch_size, sampler=order, num_workers=workers,
                                           drop_last=len(order) > batch_size)

    def loss(self, outputs, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        return segdec_loss(outputs, batch[1], batch[2], batch[3], self.spec.theta(self.epoch, self.epochs), self.spec)

    def evaluate(self, model: torch.nn.Module, device: torch.device, batch: int = 16) -> dict[str, float]:
        model.eval()
        scores = []
        with torch.inference_mode():
            for i in range(0, len(self.x_test), batch):
                _, dec = model(torch.from_numpy(self.x_test[i : i + batch]).to(device))
                scores.append(torch.sigmoid(dec.float()[:, 0]).cpu().numpy())
        f = decision_figures(self.y_test, np.concatenate(scores), self.spec.threshold)
        return {k: f[k] for k in ("ap", "auc", "f_best", "f_at_threshold", "fp", "fn") if f[k] is not None}
