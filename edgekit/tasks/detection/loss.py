"""The SSD multibox loss of seeds/000 eq. 6: (L_conf + beta * L_loc) / N.

L_conf is softmax cross-entropy over the positives and the hardest negatives (at most
``neg_pos`` negatives per positive, ranked by their background loss); L_loc is smooth-L1 over
the positives' offsets; N is the number of positives (matched priors) in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def multibox_loss(loc: torch.Tensor, conf: torch.Tensor, loc_t: torch.Tensor, labels_t: torch.Tensor,
                  neg_pos: float = 3.0, beta: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """loc (B, P, 4), conf (B, P, K+1) logits, loc_t (B, P, 4), labels_t (B, P) -> loss, parts."""
    loc, conf = loc.float(), conf.float()
    pos = labels_t > 0
    n_pos = pos.sum()
    ce = F.cross_entropy(conf.reshape(-1, conf.shape[-1]), labels_t.reshape(-1), reduction="none").view_as(labels_t)
    with torch.no_grad():  # hard negative mining: rank negatives by their loss, keep neg_pos per positive
        mining = ce.clone()
        mining[pos] = -1.0
        rank = mining.argsort(1, descending=True).argsort(1)
        n_neg = torch.clamp(neg_pos * pos.sum(1, keepdim=True), max=labels_t.shape[1] - 1)
        neg = rank < n_neg
    denom = n_pos.clamp(min=1).float()
    conf_loss = ce[pos | neg].sum() / denom
    loc_loss = F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum") / denom
    total = conf_loss + beta * loc_loss
    return total, {"conf": float(conf_loss.detach()), "loc": float(loc_loss.detach()), "positives": int(n_pos)}
