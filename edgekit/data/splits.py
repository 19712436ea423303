"""Seeded, class-stratified choices of samples: train/test splits and calibration sets."""
from __future__ import annotations

import numpy as np


def stratified_split(labels: list[int], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, test): each class shuffled with ``seed`` and ``test_fraction`` of it held out."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    labels_arr = np.asarray(labels)
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, int(round(len(idx) * test_fraction))) if len(idx) > 1 else 0
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return sorted(train), sorted(test)


def stratified_sample(labels: list[int], per_class: int, seed: int) -> list[int]:
    """Up to ``per_class`` indices of each class, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    chosen: list[int] = []
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == c)
        chosen += idx[rng.permutation(len(idx))[:per_class]].tolist()
    return sorted(chosen)


def grouped_split(labels: list[int], clusters: list[int], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """As :func:`stratified_split`, but every cluster (copies of one picture) lands whole on one side; a
    cluster counts for the class of its first image. Without copies (every cluster one image) it is
    the same split as :func:`stratified_split`."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    members: dict[int, list[int]] = {}
    for i, c in enumerate(clusters):
        members.setdefault(c, []).append(i)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for label in sorted(set(labels)):
        units = [m for m in members.values() if labels[m[0]] == label]
        units = [units[k] for k in rng.permutation(len(units))]
        want = max(1, round(sum(map(len, units)) * test_fraction)) if len(units) > 1 else 0
        taken = 0
        for unit in units:
            if taken < want:
                test += unit
                taken += len(unit)
            else:
                train += unit
    return sorted(train), sorted(test)
