"""Split rules: the paper's per-class 70/30 split and stratified subsampling."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import T2SError


def split_70_30(labels: Sequence[int], train_frac: float = 0.7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class split used by the paper where a dataset has no official one (reference 7.3).

    One ``RandomState(seed)`` is shared across classes, visited in order of first appearance of
    each label; within a class the indices are shuffled and the first ``floor(0.7 n)`` go to train.
    Returns sorted index arrays (train, test).
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    order: list = []
    seen: set = set()
    for lab in labels.tolist():  # first-appearance order, as the published loaders iterate
        if lab not in seen:
            seen.add(lab)
            order.append(lab)
    train: list[int] = []
    test: list[int] = []
    for lab in order:
        idx = np.flatnonzero(labels == lab)
        rng.shuffle(idx)
        k = int(np.floor(train_frac * len(idx)))
        train.extend(idx[:k].tolist())
        test.extend(idx[k:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def split_groups_70_30(labels: Sequence[int], groups: Sequence[int], train_frac: float = 0.7,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class 70/30 split of whole *groups* (a source item and its near-duplicates or views).

    Every image of a group lands on the same side, so no test image is a near-copy of a training
    image. A group belongs to the class of its first image. One ``RandomState(seed)`` is shared
    across classes (first-appearance order, as :func:`split_70_30`); within a class the groups
    are shuffled and go to train, in that order, while the class has fewer than
    ``floor(train_frac * n_images)`` training images (groups of unequal size make the share
    approximate); at least one group stays on each side when the class has two or more.
    Returns sorted index arrays (train, test).
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if labels.shape != groups.shape:
        raise T2SError(f"labels {labels.shape} and groups {groups.shape} differ in length",
                       "give one group id per image")
    first: dict[int, int] = {}
    for i, g in enumerate(groups.tolist()):
        first.setdefault(g, i)
    group_label = {g: labels[i] for g, i in first.items()}
    rng = np.random.RandomState(seed)
    order: list = []
    for lab in labels.tolist():
        if lab not in order:
            order.append(lab)
    sizes: dict = {}
    for g in groups.tolist():
        sizes[g] = sizes.get(g, 0) + 1
    train_groups: set = set()
    for lab in order:
        members = np.asarray([g for g in first if group_label[g] == lab])  # first-appearance order
        rng.shuffle(members)
        target = int(np.floor(train_frac * sum(sizes[g] for g in members.tolist())))
        count, k = 0, 0
        while k < len(members) and count < target:
            count += sizes[members[k]]
            k += 1
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        train_groups.update(members[:k].tolist())
    in_train = np.asarray([g in train_groups for g in groups.tolist()], dtype=bool)
    return np.flatnonzero(in_train).astype(np.int64), np.flatnonzero(~in_train).astype(np.int64)


def stratified_indices(
    labels: Sequence[int],
    *,
    fraction: float = 1.0,
    max_per_class: int | None = None,
    max_total: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of a class-stratified subsample.

    Stage 1 (``fraction``): each class keeps ``round(fraction * n_c)`` images (at least one), a
    prefix of one seeded permutation per class, so smaller fractions are subsets of larger ones
    (less labelled data, as in the paper's Table 1). Stage 2 (caps, a compute limit): at most
    ``max_per_class`` per class and ``max_total`` overall (every class scaled by the same
    factor), drawn at random from the stage-1 set with a second seeded stream. Sorted output.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise T2SError(f"fraction={fraction!r} out of range", "use a number in (0, 1], e.g. 0.1 for 10 %")
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    keep = np.minimum(counts, np.maximum(1, np.round(counts * float(fraction)))).astype(np.int64)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == cls))[:k] for cls, k in zip(classes, keep)]
    cap = keep.copy()
    if max_per_class is not None:
        cap = np.minimum(cap, int(max_per_class))
    if max_total is not None and cap.sum() > max_total:
        cap = np.maximum(1, np.floor(cap * (max_total / cap.sum()))).astype(np.int64)
    if np.any(cap < keep):
        rng2 = np.random.default_rng([int(seed), 1])
        chosen = [c if k >= len(c) else rng2.choice(c, size=int(k), replace=False) for c, k in zip(chosen, cap)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
