"""How shrinking masks to the network's size treats a data set's defects, per group: the defect pixels each rule
marks, and the defects (connected components of the mask as read) that vanish entirely.

Usage: python benchmarks/mask_resize.py --data ../shared/datasets/Magnetic-Tile --size 128 --name mask-resize-mt-128

Rules: nearest neighbour (what edgekit did before: one source pixel decides each network pixel); area with half
a pixel needed (INTER_AREA, share >= 0.5: keeps a blob's area, erases a line one source pixel wide shrunk twofold);
and edgekit's (edgekit.tasks.segmentation.data.area_resize: share >= 0.5, and a defect that would vanish keeps the
network pixels holding at least half its own largest share). A defect counts as lost when none of the network
pixels over it is marked. "Area share" is the reference: the defect area
the network pixels hold (the sum of shares), against which each rule's marked pixels are compared, with the soft
IoU of the rule's mask and the shares (sum of minima over sum of maxima: 100 % only if every share were 0 or 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgekit.data.images import read_grey
from edgekit.data.masks import load_masks, read_mask
from edgekit.progress import bar
from edgekit.tasks.segmentation.data import area_resize

sys.path.insert(0, str(Path(__file__).parent))
from run_tables import publish  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    data, size = load_masks(args.data), args.size
    totals: dict[str, dict[str, float]] = {}
    for s in bar(data.samples, "resizing masks"):
        image = read_grey(s.path)
        mask = (read_mask(s, image.shape[:2], "resize", "defect-free")[0] > 0).astype(np.uint8)
        if not mask.any():
            continue
        share = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        rules = {"nearest": cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST),
                 "area >= 0.5": (share >= 0.5).astype(np.uint8), "edgekit (area >= 0.5, no defect lost)": area_resize(mask, size)}
        n, parts = cv2.connectedComponents(mask, connectivity=8)
        t = totals.setdefault(data.classes[s.label], {"images": 0, "defects": 0, "area share": 0.0})
        t["images"] += 1
        t["defects"] += n - 1
        t["area share"] += float(share.sum())
        for rule, small in rules.items():
            t[rule] = t.get(rule, 0) + int(small.sum())
            t[f"{rule} min"] = t.get(f"{rule} min", 0.0) + float(np.minimum(share, small).sum())
            t[f"{rule} max"] = t.get(f"{rule} max", 0.0) + float(np.maximum(share, small).sum())
            # a defect is lost when none of the network pixels over it is marked
            up = cv2.resize(small, mask.shape[::-1], interpolation=cv2.INTER_NEAREST)
            kept = set(np.unique(parts[(up > 0) & (parts > 0)]).tolist())
            t[f"{rule} lost"] = t.get(f"{rule} lost", 0) + (n - 1 - len(kept))
    rules = ("nearest", "area >= 0.5", "edgekit (area >= 0.5, no defect lost)")
    table = [[g, t["images"], t["defects"], round(t["area share"]),
              *[f"{100 * t[r] / t['area share']:.0f} / {100 * t[f'{r} min'] / t[f'{r} max']:.1f} / {t[f'{r} lost']}"
                for r in rules]]
             for g, t in sorted(totals.items())]
    publish(args.name, f"Defect masks of {args.data.name} shrunk to {size}x{size}", ["group", "images", "defects",
            "area share px", *[f"{r}: marked % of share / soft IoU % / defects lost" for r in rules]],
            table, {"data": str(args.data), "size": size, "groups": totals})


if __name__ == "__main__":
    main()
