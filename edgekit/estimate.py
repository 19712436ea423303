"""Time estimates for a build's plan, from a few timed training steps of the recipe's model on
this machine: rough (labelled so), printed before long work starts; the epoch lines then say
what is left from the real pace."""
from __future__ import annotations

import time

import torch

from edgekit.checkpoint import build_model
from edgekit.recipes import Recipe


def seconds_per_step(recipe: Recipe, batch_size: int, steps: int = 2) -> float:
    """Seconds of one training step (forward + backward + update) at ``batch_size`` on this CPU/GPU."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(recipe).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    x = torch.randn(batch_size, *recipe.preprocess.input_shape, device=device)

    def step() -> None:
        out = model(x)
        loss = sum(t.float().mean() for t in (out if isinstance(out, (tuple, list)) else (out,)))
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up: allocations, kernel choice
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def training_seconds(step_s: float, batch_size: int, n_train: int, n_test: int, epochs: int) -> float:
    """Epochs of training steps plus the test pass after each (a forward is about a third of a step)."""
    per_image_eval = step_s / max(1, batch_size) / 3.0
    return epochs * (-(-n_train // max(1, batch_size)) * step_s + n_test * per_image_eval)


def human(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
