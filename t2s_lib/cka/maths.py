"""CKA maths: Gram matrices, the unbiased HSIC estimator, full-batch and minibatch CKA.

CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with Gram matrices K = k(X, X), L = k(Y, Y).
HSIC is the *unbiased* estimator (Song et al. 2012). Following Nguyen et al. (ICLR 2021), it is
averaged over minibatches and CKA is formed from the averaged HSIC values, so memory depends on the
batch size, not on the number of examples. Kernels: linear (Kornblith's default; the paper does
not say which it used) or RBF with bandwidth ``sigma`` x the median squared distance (the mean of
the two middle values for an even count, as numpy's median).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import T2SError


def median(values):
    """Median of a tensor's entries as numpy defines it (the two middle values averaged for an even count)."""
    v = values.flatten().sort().values
    n = v.numel()
    return (v[(n - 1) // 2] + v[n // 2]) / 2


def gram(x, kernel: str = "linear", sigma: float = 1.0):
    """Gram matrix of the rows of ``x`` ([n, d], float64)."""
    import torch

    x = x.reshape(x.shape[0], -1).double()
    if kernel == "linear":
        return x @ x.T
    if kernel == "rbf":
        sq = x.pow(2).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)
        med = median(d2)  # Kornblith et al.: bandwidth relative to the median squared distance
        return torch.exp(-d2 / (2 * sigma**2 * med.clamp_min(1e-12)))
    raise T2SError(f"unknown CKA kernel {kernel!r}", "use linear or rbf")


def hsic_unbiased(k, l):
    """Unbiased HSIC estimator (Song et al. 2012, eq. 5) of two n x n Gram matrices, n > 3."""
    n = k.shape[0]
    if n < 4:
        raise T2SError(f"unbiased HSIC needs at least 4 examples per batch (got {n})", "use a larger --batch-size")
    k = k.clone()
    l = l.clone()
    k.fill_diagonal_(0)
    l.fill_diagonal_(0)
    trace_kl = (k * l).sum()  # tr(K L) for symmetric K, L
    ones_term = k.sum() * l.sum() / ((n - 1) * (n - 2))
    cross = 2.0 / (n - 2) * (k.sum(0) @ l.sum(1))  # 1' K L 1
    return (trace_kl + ones_term - cross) / (n * (n - 3))


def cka(x, y, kernel: str = "linear", sigma: float = 1.0) -> float:
    """Full-batch CKA of two feature matrices ([n, ...] each) with the unbiased HSIC."""
    k, l = gram(x, kernel, sigma), gram(y, kernel, sigma)
    return float(hsic_unbiased(k, l) / (hsic_unbiased(k, k) * hsic_unbiased(l, l)).sqrt())


class MinibatchCKA:
    """Accumulate HSIC over minibatches for every pair of named feature sets; ``matrix()`` gives CKA."""

    def __init__(self, names: Sequence[str], kernel: str = "linear", sigma: float = 1.0):
        import torch

        self.names = list(names)
        self.kernel, self.sigma = kernel, sigma
        m = len(self.names)
        self.hsic = torch.zeros(m, m, dtype=torch.float64)
        self.batches = 0

    def update(self, features: Mapping[str, Any] | Sequence[Any]) -> None:
        import torch

        feats = [features[n] for n in self.names] if isinstance(features, Mapping) else list(features)
        grams = [gram(f, self.kernel, self.sigma) for f in feats]
        m = len(grams)
        out = torch.zeros(m, m, dtype=torch.float64)
        for i in range(m):
            for j in range(i, m):
                out[i, j] = out[j, i] = hsic_unbiased(grams[i], grams[j]).cpu()
        self.hsic += out
        self.batches += 1

    def matrix(self):
        """CKA matrix (numpy [m, m]) from the HSIC values averaged over the minibatches seen."""
        if not self.batches:
            raise T2SError("no minibatch was accumulated for CKA", "give a task with at least 4 images")
        h = self.hsic / self.batches
        d = h.diagonal().clamp_min(1e-30).sqrt()
        return (h / (d[:, None] * d[None, :])).numpy()


def minibatch_cka(x, y, batch_size: int = 256, epochs: int = 1, kernel: str = "linear", seed: int = 0) -> float:
    """Minibatch CKA of two feature matrices (``epochs`` shuffled passes; last partial batch dropped)."""
    import torch

    acc = MinibatchCKA(["x", "y"], kernel)
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n - batch_size + 1, batch_size):
            idx = order[s:s + batch_size]
            acc.update([x[idx], y[idx]])
    return float(acc.matrix()[0, 1])


