"""Pictures beside the tables: confusion matrices, precision-recall curves, latency histograms (PNG,
matplotlib without a display)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, cell: float = 3.6):
    plt = pyplot()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, cell * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return plt, fig, list(axes.flat[:n])


def save(plt, fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path).name


def confusion_matrices(path: Path, matrices: dict[str, Sequence[Sequence[int]]], classes: Sequence[str]) -> str:
    """One panel per artifact: rows true class, columns predicted, counts written in the cells."""
    plt, fig, axes = _grid(len(matrices), cell=4.2)
    short = [c.replace("_", " ") for c in classes]
    for ax, (label, m) in zip(axes, matrices.items()):
        m = np.asarray(m)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=max(1, m.max()))
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > m.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), short, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), short, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(label, fontsize=9)
    return save(plt, fig, path)


def pr_curves(path: Path, curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], classes: Sequence[str],
              ap: dict[str, dict[str, float]]) -> str:
    """One panel per class, one line per artifact: precision against recall, AP in the legend."""
    plt, fig, axes = _grid(len(classes))
    for ax, name in zip(axes, classes):
        for label, per_class in curves.items():
            recall, precision = per_class.get(name, (np.zeros(0), np.zeros(0)))
            ax.step(np.concatenate([[0.0], recall]), np.concatenate([[1.0], precision]), where="post",
                    label=f"{label} {ap.get(label, {}).get(name, 0.0):.1f}", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.legend(fontsize=6, loc="lower left", title="AP@0.5 (VOC07)", title_fontsize=6)
    return save(plt, fig, path)


def latency_histogram(path: Path, samples: dict[str, Sequence[float]]) -> str:
    """Distribution of per-call latencies for each row of a benchmark, p50 and p99 marked."""
    plt, fig, axes = _grid(len(samples), cell=3.8)
    for ax, (label, ms) in zip(axes, samples.items()):
        ms = np.asarray(ms, np.float64)
        ax.hist(ms, bins=min(40, max(5, len(ms) // 3)), color="#4c72b0")
        for q, style in ((50, "-"), (99, "--")):
            v = float(np.percentile(ms, q))
            ax.axvline(v, color="black", linestyle=style, linewidth=1, label=f"p{q} {v:.2f} ms")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("ms per call", fontsize=8)
        ax.legend(fontsize=7)
    return save(plt, fig, path)
