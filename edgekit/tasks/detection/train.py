"""Detection training: augmented images matched to the priors per item, multibox loss, VOC mAP."""
from __future__ import annotations

import numpy as np
import torch

from edgekit.camera.preprocess import Preprocess
from edgekit.data.augment import AugmentConfig, augment
from edgekit.data.recipe_data import SplitData, read_images
from edgekit.distributed import World, rank_batches
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.tasks import postprocessor
from edgekit.tasks.detection.boxes import match
from edgekit.tasks.detection.loss import multibox_loss
from edgekit.tasks.detection.metrics import GroundTruth, voc_map
from edgekit.tasks.detection.spec import DetectionSpec


class DetectionItems(torch.utils.data.Dataset):
    """Item i of an epoch: augmented with rng (seed, epoch, i), pre-processed, matched to the priors."""

    def __init__(self, images: list[np.ndarray], truths: list[GroundTruth], pre: Preprocess, spec: DetectionSpec,
                 aug: AugmentConfig | None, seed: int, epoch: int) -> None:
        self.images, self.truths, self.pre, self.spec = images, truths, pre, spec
        self.aug, self.seed, self.epoch = aug, seed, epoch

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, truth = self.images[i], self.truths[i]
        boxes, labels = truth.boxes, truth.labels
        if self.aug is not None:
            image, boxes, labels = augment(image, boxes, labels, np.random.default_rng([self.seed, self.epoch, i]),
                                           self.aug)
        targets = match(boxes, labels, self.spec.prior_boxes, self.spec.match_iou)
        return torch.from_numpy(self.pre(image)), torch.from_numpy(targets.loc), torch.from_numpy(targets.labels)


class DetectionTraining:
    headline = "map_voc07"
    label = "test mAP@0.5 % (VOC07 11-point)"

    def __init__(self, recipe: Recipe, data: SplitData, seed: int) -> None:
        self.spec = DetectionSpec.from_recipe(recipe)
        self.pre, self.classes, self.seed = recipe.preprocess, recipe.classes, seed
        self.post = postprocessor(recipe)
        try:
            self.aug = AugmentConfig.from_config(recipe.train.get("augment"))
        except (TypeError, ValueError) as exc:
            raise EdgekitError(f"{recipe.path}: train.augment: {exc}") from exc
        self.train_images = read_images(data.train, "reading train images")
        self.train_truths = GroundTruth.for_images(data.train, self.train_images)
        self.test_images = read_images(data.test, "reading test images")
        self.test_truths = GroundTruth.for_images(data.test, self.test_images)

    def batches(self, epoch: int, batch_size: int, workers: int = 0, shard: World = World()):
        items = DetectionItems(self.train_images, self.train_truths, self.pre, self.spec, self.aug, self.seed, epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(items)).tolist()
        return torch.utils.data.DataLoader(items, batch_sampler=rank_batches(order, batch_size, len(order) > batch_size,
                                                                             shard), num_workers=workers)

    def loss(self, outputs: tuple[torch.Tensor, torch.Tensor], batch: tuple[torch.Tensor, ...]):
        loc, conf = outputs
        return multibox_loss(loc, conf, batch[1], batch[2], self.spec.neg_pos, self.spec.beta)

    def evaluate(self, model: torch.nn.Module, device: torch.device, batch: int = 16) -> dict[str, float]:
        model.eval()
        dets = []
        with torch.inference_mode():
            for i in range(0, len(self.test_images), batch):
                x = torch.from_numpy(self.pre.batch(self.test_images[i : i + batch])).to(device)
                dets += self.post([t.float().cpu().numpy() for t in model(x)])
        voc = voc_map(self.test_truths, dets, self.classes)
        return {"map_voc07": voc["map_voc07"], "map_all_point": voc["map_all_point"]}
