"""PyTorch eager FP32: the baseline every speed-up is measured against."""
from __future__ import annotations

import numpy as np
import torch

NAME = "pytorch"


class TorchRunner:
    backend = NAME

    def __init__(self, model: torch.nn.Module, input_shape: tuple[int, ...], threads: int) -> None:
        torch.set_num_threads(threads)
        self.model = model.eval()
        self.input_shape = input_shape

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch))
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
