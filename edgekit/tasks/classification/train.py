"""Classification training: the whole split pre-processed in memory (or, with ``train.robust_augment``,
each batch degraded and pre-processed as it is drawn), cross-entropy, accuracy."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.data.augment import RobustConfig, degrade
from edgekit.data.recipe_data import SplitData, read_images
from edgekit.distributed import World, rank_batches
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe


class ClassificationTraining:
    headline = "accuracy"
    label = "test accuracy %"

    def __init__(self, recipe: Recipe, data: SplitData, seed: int) -> None:
        pre = recipe.preprocess
        self.seed = seed
        try:
            self.robust = RobustConfig.from_config(recipe.train.get("robust_augment"))
        except (TypeError, ValueError) as exc:
            raise EdgekitError(f"{recipe.path}: train.robust_augment: {exc}") from exc
        self.pre = pre
        raw = read_images(data.train, "reading train images")
        self.raw_train = raw if self.robust else None
        self.x_train = None if self.robust else pre.batch(raw)
        self.y_train = np.array([s.label for s in data.train])
        self.x_test = pre.batch(read_images(data.test, "reading test images"))
        self.y_test = np.array([s.label for s in data.test])

    def batches(self, epoch: int, batch_size: int, workers: int = 0, shard: World = World()):
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.y_train))
        for idx in rank_batches(order, batch_size, False, shard):
            idx = np.asarray(idx)
            if self.robust:      # image j of epoch e degraded by generator (seed, e, j): reproducible
                x = self.pre.batch([degrade(self.raw_train[j], np.random.default_rng([self.seed, epoch, int(j)]),
                                            self.robust) for j in idx])
            else:
                x = self.x_train[idx]
            yield torch.from_numpy(x), torch.from_numpy(self.y_train[idx])

    def loss(self, outputs: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        return F.cross_entropy(outputs.float(), batch[1]), {}

    def evaluate(self, model: torch.nn.Module, device: torch.device, batch: int = 32) -> dict[str, float]:
        model.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(self.x_test), batch):
                logits = model(torch.from_numpy(self.x_test[i : i + batch]).to(device))
                correct += int((logits.argmax(1).cpu().numpy() == self.y_test[i : i + batch]).sum())
        return {"accuracy": 100.0 * correct / max(1, len(self.x_test))}
