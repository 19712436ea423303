"""A detection recipe's ``detection:`` section, checked against its model, as one object.

Training (matching, loss), export (the prior boxes shipped beside the model) and every backend's
post-processing read the same spec, so the priors a model was trained with are the priors its
outputs are decoded with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from edgekit.camera.post.detection import PRIORS_FILE, PostprocessConfig, config
from edgekit.errors import EdgekitError
from edgekit.models import model_meta
from edgekit.recipes import Recipe
from edgekit.tasks.detection.priors import PriorSpec, make_priors

KEYS = {"priors", "match_iou", "loss", "postprocess"}


@dataclass(frozen=True)
class DetectionSpec:
    priors: PriorSpec
    map_sizes: tuple[int, ...]
    match_iou: float = 0.5
    neg_pos: float = 3.0
    beta: float = 1.0
    postprocess: PostprocessConfig = PostprocessConfig()

    @cached_property
    def prior_boxes(self) -> np.ndarray:
        return make_priors(list(self.map_sizes), self.priors)

    def describe(self, folder: Path) -> dict:
        """Write the priors beside a deployable model; return how its outputs are post-processed."""
        np.save(Path(folder) / PRIORS_FILE, self.prior_boxes)
        return config(self.postprocess, {"count": len(self.prior_boxes), "map_sizes": list(self.map_sizes),
                                         **asdict(self.priors)})

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> "DetectionSpec":
        cfg = recipe.detection
        where = f"{recipe.path}: detection"
        if not cfg:
            raise EdgekitError(f"{where}: missing (a detection recipe needs priors and post-processing)")
        unknown = set(cfg) - KEYS
        if unknown:
            raise EdgekitError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})")
        try:
            priors = PriorSpec.from_config(cfg.get("priors", {}))
            post = PostprocessConfig.from_config(cfg.get("postprocess", {}))
        except (TypeError, ValueError) as exc:
            raise EdgekitError(f"{where}: {exc}") from exc
        if recipe.data.get("boxes") is not True:
            raise EdgekitError(f"{recipe.path}: data.boxes must be true (a detector trains and is scored on each "
                               "image's boxes)")
        args = recipe.model.get("args", {})
        if args.get("boxes_per_cell", 4) != len(priors.aspect_ratios):
            raise EdgekitError(f"{recipe.path}: model.args.boxes_per_cell ({args.get('boxes_per_cell', 4)}) must equal "
                               f"the number of detection.priors.aspect_ratios ({len(priors.aspect_ratios)})")
        if args.get("image_size") != recipe.preprocess.size:
            raise EdgekitError(f"{recipe.path}: model.args.image_size ({args.get('image_size')}) must equal "
                               f"preprocess.size ({recipe.preprocess.size})")
        if args.get("num_classes") != len(recipe.classes):
            raise EdgekitError(f"{recipe.path}: model.args.num_classes ({args.get('num_classes')}) must equal "
                               f"the number of data.classes ({len(recipe.classes)})")
        sizes = model_meta(recipe.model["name"]).get("map_sizes")
        if sizes is None:
            raise EdgekitError(f"{recipe.path}: model {recipe.model['name']!r} is not a registered detector")
        loss = cfg.get("loss", {})
        return cls(priors, tuple(sizes(recipe.preprocess.size)), float(cfg.get("match_iou", 0.5)),
                   float(loss.get("neg_pos", 3.0)), float(loss.get("beta", 1.0)), post)
