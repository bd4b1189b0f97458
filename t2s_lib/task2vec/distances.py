"""Distances between Task2Vec vectors.

* :func:`cosine_similarity_matrix`: cosine of L2-normalised hessians, what Task2Sim's policy and
  its distance-weighted variant use (reference section 1);
* :func:`task2vec_distance`: the symmetric Task2Vec distance of Achille et al., the cosine
  distance between ``h0/(h0+h1)`` and ``h1/(h0+h1)`` (eps 1e-8).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import T2SError
from ..published import l2_normalize, load_task2vec_vectors


#: The published vectors' probe: torchvision's ImageNet ResNet-18, Fisher batches of 64 (reference 6).
PUBLISHED_COMPARABILITY = {"probe": "resnet18", "weights": "imagenet (published vectors)", "fisher_batch_size": 64}


def check_comparable(metas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Refuse to compare embeddings of different probes or Fisher batch sizes; returns the common key.

    ``metas`` maps a task name to its embedding metadata (``Embedding.meta``); an embedding written
    before the key was recorded (no ``comparability`` entry) cannot be checked and is accepted.
    """
    keys = {name: dict(m.get("comparability") or {}) for name, m in metas.items()}
    known = {name: k for name, k in keys.items() if k}
    if not known:
        return {}
    ref_name, ref = next(iter(known.items()))
    for name, k in known.items():
        diff = sorted(f for f in set(ref) | set(k) if ref.get(f) != k.get(f))
        if diff:
            raise T2SError(f"Task2Vec embeddings of {ref_name!r} and {name!r} are not comparable "
                           f"(different {', '.join(diff)}: {[ref.get(f) for f in diff]} vs {[k.get(f) for f in diff]})",
                           "embed every task with the same probe weights and fisher_batch_size")
    return ref


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


def task2vec_distance_matrix(A: np.ndarray, B: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    """Symmetric Task2Vec distance between every row of ``A`` and every row of ``B`` (default A)."""
    A = np.asarray(A, dtype=np.float64)
    B = A if B is None else np.asarray(B, dtype=np.float64)
    out = np.empty((A.shape[0], B.shape[0]))
    for i, a in enumerate(A):
        s = a[None] + B + eps
        out[i] = 1.0 - (l2_normalize(a[None] / s) * l2_normalize(B / s)).sum(axis=1)
    return out


def distance_matrix(H: np.ndarray, metric: str = "task2vec") -> np.ndarray:
    """Pairwise distances: ``task2vec`` (symmetric) or ``cosine`` (1 - cosine of L2-normalised)."""
    H = np.asarray(H)
    if metric == "cosine":
        return 1.0 - cosine_similarity_matrix(H)
    if metric != "task2vec":
        raise T2SError(f"unknown distance {metric!r}", "use 'task2vec' or 'cosine'")
    D = task2vec_distance_matrix(H)
    np.fill_diagonal(D, 0.0)
    return D


def published_vectors(which: str = "all") -> tuple[list[str], np.ndarray]:
    """The 20 published hessians (``seen``, ``unseen`` or ``all``), in the published file order."""
    from ..published import VECTOR_FILES

    files = {"seen": VECTOR_FILES[:1], "unseen": VECTOR_FILES[1:], "all": VECTOR_FILES}
    if which not in files:
        raise T2SError(f"unknown published vector set {which!r}", "use 'seen', 'unseen' or 'all'")
    vectors = load_task2vec_vectors(files[which])  # validated, in file order
    return list(vectors), np.stack([v.astype(np.float32) for v in vectors.values()])


def similarity_table(names: Sequence[str], H: np.ndarray):
    """Cosine-similarity matrix as a pandas DataFrame (rows/columns = task names)."""
    import pandas as pd

    return pd.DataFrame(cosine_similarity_matrix(H), index=list(names), columns=list(names))
