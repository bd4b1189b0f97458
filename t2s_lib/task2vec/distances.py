"""Distances between Task2Vec vectors.

* :func:`cosine_similarity_matrix`: cosine of L2-normalised hessians, what Task2Sim's policy and
  its distance-weighted variant use (reference section 1);
* :func:`task2vec_distance`: the symmetric Task2Vec distance of Achille et al., the cosine
  distance between ``h0/(h0+h1)`` and ``h1/(h0+h1)`` (eps 1e-8).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import T2SError
from ..paths import PUBLISHED_DATA_DIR


def l2_normalize(h: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (``F.normalize`` semantics: divide by max(norm, eps))."""
    h = np.asarray(h, dtype=np.float64)
    norms = np.linalg.norm(h, axis=-1, keepdims=True)
    return h / np.maximum(norms, eps)


def cosine_similarity(h0: np.ndarray, h1: np.ndarray) -> float:
    return float(np.dot(l2_normalize(h0), l2_normalize(h1)))


def cosine_similarity_matrix(H: np.ndarray) -> np.ndarray:
    n = l2_normalize(np.asarray(H))
    return np.clip(n @ n.T, -1.0, 1.0)


def task2vec_distance(h0: np.ndarray, h1: np.ndarray, eps: float = 1e-8) -> float:
    """Symmetric Task2Vec distance (0 = same, 1 = orthogonal)."""
    h0 = np.asarray(h0, dtype=np.float64)
    h1 = np.asarray(h1, dtype=np.float64)
    s = h0 + h1 + eps
    return 1.0 - cosine_similarity(h0 / s, h1 / s)


def distance_matrix(H: np.ndarray, metric: str = "task2vec") -> np.ndarray:
    """Pairwise distances: ``task2vec`` (symmetric) or ``cosine`` (1 - cosine of L2-normalised)."""
    H = np.asarray(H)
    if metric == "cosine":
        return 1.0 - cosine_similarity_matrix(H)
    if metric != "task2vec":
        raise T2SError(f"unknown distance {metric!r}", "use 'task2vec' or 'cosine'")
    n = len(H)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            D[i, j] = D[j, i] = task2vec_distance(H[i], H[j])
    return D


def published_vectors(which: str = "all") -> tuple[list[str], np.ndarray]:
    """The 20 published hessians (``seen``, ``unseen`` or ``all``), in the published file order."""
    parts = ["seen", "unseen"] if which == "all" else [which]
    names: list[str] = []
    vecs: list[np.ndarray] = []
    for part in parts:
        with np.load(PUBLISHED_DATA_DIR / f"task2vec_{part}.npz") as z:
            for name in z["task_names"]:
                names.append(str(name))
                vecs.append(z[f"{name}__hessian"].astype(np.float32))
    return names, np.stack(vecs)


def similarity_table(names: Sequence[str], H: np.ndarray):
    """Cosine-similarity matrix as a pandas DataFrame (rows/columns = task names)."""
    import pandas as pd

    return pd.DataFrame(cosine_similarity_matrix(H), index=list(names), columns=list(names))
