"""Seeding for determinism: same seed and settings give the same numbers."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int, *, deterministic_torch: bool = True) -> None:
    """Seed python, numpy and (if importable) torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # the policy and settings stages do not need torch
        return
    torch.manual_seed(seed)
    if deterministic_torch:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
