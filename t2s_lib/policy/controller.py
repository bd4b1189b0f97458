"""The published Task2Sim controller, re-implemented in NumPy with an exact low-rank reparametrisation.

Algorithm (reference section 3): an MLP 9600 -> 400 -> 400 (ReLU) with 8 two-way softmax heads
maps an L2-normalised Task2Vec vector to a factorised distribution over the 256 settings. It is
trained by REINFORCE on a lookup table of rewards, with a self-critical (greedy) baseline,
decaying exploration noise on the first sub-step of each batch, self-imitation replay of the best
setting seen so far for each task (from epoch 50), SGD with momentum and weight decay, linear
warm-up and a step LR schedule; evaluation takes the argmax of each head.

Why NumPy and a reparametrisation. The first layer W1 (400 x 9600) only ever multiplies inputs
from the span of the task vectors (20 of them). Write W1 = A Q + W_perp with Q an orthonormal
basis (r x 9600, r <= 20) of that span. The gradient of W1 is (dL/dh) x^T, which lies in the span,
and SGD with momentum and weight decay is linear in the parameters, so the in-span part A evolves
exactly like SGD on a first layer of shape 400 x r fed with coordinates z = Q x, while W_perp only
shrinks by weight decay: W_perp(t) = c(t) W_perp(0) for a scalar c(t) tracked alongside. Outputs
for the training tasks depend on A alone; any other vector x gets the exact contribution
c(t) W1(0) (x - Q^T Q x), with W1(0) regenerated from the init seed. Training becomes ~1000x
cheaper with identical mathematics (``first_layer="full"`` keeps the plain 9600-wide layer for
checking this). Manual back-propagation in float64 keeps each of the ~17k optimiser steps to a
few dozen small NumPy calls.

Loss variants:

* ``paper``: the released code's loss. Head probabilities are indexed as ``probs[:, actions]``,
  giving a B x B matrix (row i: task i's log-probability of batch-mate j's action) that is
  multiplied by the advantage vector broadcast over j and averaged over all B^2 entries. Every
  task is pushed towards every batch-mate's action; this produced the published numbers.
* ``per-task``: textbook REINFORCE, each task's log-probability of its own action times its own
  advantage, averaged over the batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import T2SError
from ..published import l2_normalize
from ..settings import HEAD_ORDER, PARAMETERS, SimSetting

N_HEADS = len(HEAD_ORDER)
LOSSES = ("paper", "per-task")


@dataclass
class ControllerConfig:
    """Hyper-parameters of the published controller (``controller/config.py`` defaults)."""

    epochs: int = 1000
    batch_size: int = 4
    lr: float = 1e-3
    warmup_lr: float = 1e-6
    warmup_epochs: int = 50
    lr_decay_gamma: float = 0.1
    lr_decay_epoch: int = 500
    weight_decay: float = 1e-5
    momentum: float = 0.9
    expl_noise: float = 0.4
    noise_red_epoch: int = 5
    imitation_start_epoch: int = 50
    replay_steps: int = 5
    hidden: int = 400
    loss: str = "paper"
    first_layer: str = "reparam"  # or "full" (plain 9600-wide layer, for checking the reparametrisation)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise T2SError(f"unknown controller loss {self.loss!r}", f"use one of: {', '.join(LOSSES)}")
        if self.first_layer not in ("reparam", "full"):
            raise T2SError(f"unknown first_layer {self.first_layer!r}", "use 'reparam' or 'full'")
        if self.epochs < 1 or self.batch_size < 1:
            raise T2SError("epochs and batch_size must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def lr_at_epoch(cfg: ControllerConfig, epoch: int) -> float:
    """LR used during ``epoch``: timm's step scheduler stepped with the epoch index at each epoch
    end, so epoch e runs with the value computed for e-1 (epochs 0 and 1 at the warm-up start)."""
    if epoch == 0:
        return cfg.warmup_lr
    t = epoch - 1
    if t < cfg.warmup_epochs:
        return cfg.warmup_lr + t * (cfg.lr - cfg.warmup_lr) / cfg.warmup_epochs
    return cfg.lr * cfg.lr_decay_gamma ** (t // cfg.lr_decay_epoch)


def noise_at_epoch(cfg: ControllerConfig, epoch: int) -> float:
    """Exploration noise 0.4 / ceil((e+1)/5): 0.4 for epochs 0-4, 0.2 for 5-9, ..."""
    return cfg.expl_noise / math.ceil((epoch + 1) / cfg.noise_red_epoch)


# ----- actions <-> settings --------------------------------------------------------------------
_HEAD_TO_PAPER_BIT = np.array([7 - PARAMETERS.index(name) for name in HEAD_ORDER])


def actions_to_index(actions: np.ndarray) -> np.ndarray:
    """[..., 8] head-order 0/1 actions -> setting index 0..255 (published enumeration)."""
    return (np.asarray(actions, dtype=np.int64) << _HEAD_TO_PAPER_BIT).sum(axis=-1)


def index_to_actions(index: np.ndarray | int) -> np.ndarray:
    return (np.asarray(index, dtype=np.int64)[..., None] >> _HEAD_TO_PAPER_BIT) & 1


def actions_to_setting(actions: Sequence[int]) -> SimSetting:
    return SimSetting(**{name: bool(a) for name, a in zip(HEAD_ORDER, actions)})


# ----- the network --------------------------------------------------------------------------
@dataclass
class _Params:
    W1: np.ndarray  # [H, r] (reparam) or [H, D] (full)
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    Wh: np.ndarray  # [16, H]: 8 heads x 2 outputs, head-major
    bh: np.ndarray

    def arrays(self) -> list[np.ndarray]:
        return [self.W1, self.b1, self.W2, self.b2, self.Wh, self.bh]


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    # PyTorch's default nn.Linear init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def init_full_first_layer(seed: int, hidden: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The 9600-wide first layer (W1, b1) at initialisation, regenerated from the seed."""
    rng = np.random.default_rng([seed, 1])
    return _uniform(rng, (hidden, dim), dim), _uniform(rng, (hidden,), dim)


class Controller:
    """The Task2Sim policy network with the published training loop.

    ``basis`` is an orthonormal basis (r x D) of the span of every task vector the controller
    will see in training and evaluation; :func:`span_basis` builds one.
    """

    def __init__(self, cfg: ControllerConfig, dim: int, seed: int, basis: np.ndarray | None = None):
        self.cfg = cfg
        self.dim = dim
        self.seed = seed
        H = cfg.hidden
        W1_full, b1 = init_full_first_layer(seed, H, dim)
        if cfg.first_layer == "reparam":
            if basis is None:
                raise T2SError("the reparametrised controller needs a basis of the task-vector span")
            self.basis = basis
            W1 = W1_full @ basis.T
        else:
            self.basis = None
            W1 = W1_full
        del W1_full
        rng = np.random.default_rng([seed, 2])
        initial = [W1, b1, _uniform(rng, (H, H), H), _uniform(rng, (H,), H),
                   _uniform(rng, (2 * N_HEADS, H), H), _uniform(rng, (2 * N_HEADS,), H)]
        # All parameters (and their gradients and momentum) live in one flat vector so that an
        # optimiser step is a handful of vector operations instead of dozens of small ones.
        sizes = [a.size for a in initial]
        self._theta = np.concatenate([a.ravel() for a in initial])
        self._grad = np.zeros_like(self._theta)
        self._buf = np.zeros_like(self._theta)
        self._tmp = np.zeros_like(self._theta)
        offsets = np.cumsum([0] + sizes)
        views = [self._theta[o:o + a.size].reshape(a.shape) for o, a in zip(offsets, initial)]
        self._grad_views = [self._grad[o:o + a.size].reshape(a.shape) for o, a in zip(offsets, initial)]
        self.params = _Params(*views)
        # Scalar tracking of the out-of-span part of W1: W_perp(t) = perp_scale * W_perp(0).
        self.perp_scale = 1.0
        self._perp_momentum = 0.0

    # -- inputs ----------------------------------------------------------------------------
    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """Raw Task2Vec vectors [n, D] -> first-layer inputs (L2-normalised, projected if reparam)."""
        x = l2_normalize(np.asarray(vectors, dtype=np.float64))
        return x @ self.basis.T if self.basis is not None else x

    # -- forward / backward ------------------------------------------------------------------
    def _forward(self, z: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
        """Head probabilities [n, 8, 2]; ``extra`` is added to the first layer's pre-activation."""
        p = self.params
        a1 = z @ p.W1.T + p.b1
        if extra is not None:
            a1 = a1 + extra
        h1 = np.maximum(a1, 0.0)
        a2 = h1 @ p.W2.T + p.b2
        h2 = np.maximum(a2, 0.0)
        logits = (h2 @ p.Wh.T + p.bh).reshape(-1, N_HEADS, 2)
        logits = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(logits)
        probs = e / e.sum(axis=-1, keepdims=True)
        return probs, (z, a1, h1, a2, h2)

    def probabilities(self, vectors: np.ndarray, *, encoded: bool = False) -> np.ndarray:
        """Head probabilities [n, 8, 2] (head order: alphabetical parameter names)."""
        if encoded:
            return self._forward(vectors)[0]
        x = l2_normalize(np.asarray(vectors, dtype=np.float64))
        if self.basis is None:
            return self._forward(x)[0]
        z = x @ self.basis.T
        residual = x - z @ self.basis
        extra = None
        if np.abs(residual).max() > 1e-9 and self.perp_scale != 0.0:
            # A vector outside the training span: add the exact contribution of the decayed
            # out-of-span part of the 9600-wide first layer.
            W1_full, _ = init_full_first_layer(self.seed, self.cfg.hidden, self.dim)
            extra = self.perp_scale * (residual @ W1_full.T)
        return self._forward(z, extra)[0]

    def _backward(self, cache: tuple, probs: np.ndarray, used_probs: np.ndarray, actions: np.ndarray, adv: np.ndarray) -> None:
        """Gradients of the REINFORCE loss w.r.t. all parameters, written into ``self._grad``.

        ``used_probs`` are the probabilities whose log enters the loss (the noised ones on the
        exploration sub-step); the noise is a constant, so d/dp = d/d(used_probs).
        """
        z, a1, h1, a2, h2 = cache
        B = probs.shape[0]
        onehot = np.zeros_like(probs)
        np.put_along_axis(onehot, actions[..., None], 1.0, axis=-1)
        if self.cfg.loss == "paper":
            # L = -(1/B^2) sum_h sum_{i,j} A_j log q_h[i, a_jh]: row i sees every batch-mate's action.
            weight = np.einsum("j,jhk->hk", adv, onehot)[None] / (B * B)  # [1, 8, 2]
        else:
            weight = adv[:, None, None] * onehot / B  # [B, 8, 2]
        g_probs = -weight / used_probs
        g_logits = probs * (g_probs - (probs * g_probs).sum(axis=-1, keepdims=True))
        g_logits = g_logits.reshape(B, 2 * N_HEADS)
        p = self.params
        gW1, gb1, gW2, gb2, gWh, gbh = self._grad_views
        np.matmul(g_logits.T, h2, out=gWh)
        np.sum(g_logits, axis=0, out=gbh)
        g_a2 = (g_logits @ p.Wh) * (a2 > 0)
        np.matmul(g_a2.T, h1, out=gW2)
        np.sum(g_a2, axis=0, out=gb2)
        g_a1 = (g_a2 @ p.W2) * (a1 > 0)
        np.matmul(g_a1.T, z, out=gW1)
        np.sum(g_a1, axis=0, out=gb1)

    def _sgd_step(self, lr: float) -> None:
        # torch.optim.SGD(momentum=0.9, weight_decay=wd, dampening=0, nesterov=False) on the
        # gradients left in self._grad by _backward.
        wd, mu = self.cfg.weight_decay, self.cfg.momentum
        buf, tmp = self._buf, self._tmp
        buf *= mu
        buf += self._grad
        np.multiply(self._theta, wd, out=tmp)
        buf += tmp
        np.multiply(buf, lr, out=tmp)
        self._theta -= tmp
        if self.basis is not None:
            self._perp_momentum = mu * self._perp_momentum + wd * self.perp_scale
            self.perp_scale -= lr * self._perp_momentum

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        train_inputs: np.ndarray,
        rewards: np.ndarray,
        *,
        curve_inputs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        rng: np.random.Generator | None = None,
    ) -> dict[str, list[float]]:
        """Train on encoded inputs [n, r] and their reward rows [n, 256] (published enumeration).

        ``curve_inputs`` maps a name to (encoded inputs, reward rows) whose mean greedy reward is
        recorded after every epoch (learning curves). Returns those curves.
        """
        # Many tiny matrix products: BLAS threads only add synchronisation cost here.
        with threadpool_limits(limits=1):
            return self._fit(train_inputs, rewards, curve_inputs, rng)

    def _fit(self, train_inputs, rewards, curve_inputs, rng) -> dict[str, list[float]]:
        cfg = self.cfg
        rng = rng if rng is not None else np.random.default_rng([self.seed, 3])
        n = train_inputs.shape[0]
        memories: list[dict[int, float]] = [dict() for _ in range(n)]
        curves: dict[str, list[float]] = {name: [] for name in (curve_inputs or {})}
        rows = np.arange(n)
        for epoch in range(cfg.epochs):
            lr = lr_at_epoch(cfg, epoch)
            eps = noise_at_epoch(cfg, epoch)
            order = rng.permutation(n)
            for start in range(0, n, cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                z = train_inputs[batch]
                R = rewards[batch]
                B = len(batch)
                # Exploration sub-step: sample from noised head probabilities.
                probs, cache = self._forward(z)
                greedy = probs.argmax(axis=-1)
                noised = probs.copy()
                np.put_along_axis(noised, greedy[..., None], np.take_along_axis(probs, greedy[..., None], -1) - eps, -1)
                np.put_along_axis(noised, 1 - greedy[..., None], np.take_along_axis(probs, 1 - greedy[..., None], -1) + eps, -1)
                sampled = (rng.random((B, N_HEADS)) < noised[..., 1]).astype(np.int64)
                s_idx, g_idx = actions_to_index(sampled), actions_to_index(greedy)
                r_s, r_g = R[rows[:B], s_idx], R[rows[:B], g_idx]
                for b, task in enumerate(batch):
                    memories[task].setdefault(int(s_idx[b]), float(r_s[b]))
                    memories[task].setdefault(int(g_idx[b]), float(r_g[b]))
                self._backward(cache, probs, noised, sampled, r_s - r_g)
                self._sgd_step(lr)
                if epoch < cfg.imitation_start_epoch:
                    continue
                # Self-imitation: replay each task's best setting found so far. As in the released
                # code, the target is re-read from the memory at every replay sub-step (after the
                # fresh forward pass, before that pass's greedy action is stored), so a greedy
                # action that beat the memory's best on sub-step k becomes the target from k+1 on.
                for _ in range(cfg.replay_steps):
                    probs, cache = self._forward(z)
                    best_idx = np.array([max(memories[t], key=memories[t].__getitem__) for t in batch])
                    r_b = R[rows[:B], best_idx]
                    g_idx = actions_to_index(probs.argmax(axis=-1))
                    r_g = R[rows[:B], g_idx]
                    for b, task in enumerate(batch):
                        memories[task].setdefault(int(g_idx[b]), float(r_g[b]))
                    self._backward(cache, probs, probs, index_to_actions(best_idx), r_b - r_g)
                    self._sgd_step(lr)
            for name, (inputs, rrows) in (curve_inputs or {}).items():
                idx = actions_to_index(self._forward(inputs)[0].argmax(axis=-1))
                curves[name].append(float(rrows[np.arange(len(idx)), idx].mean()))
        return curves

    def predict_index(self, vectors: np.ndarray, *, encoded: bool = False) -> np.ndarray:
        """Greedy (argmax per head) setting index for each vector."""
        return actions_to_index(self.probabilities(vectors, encoded=encoded).argmax(axis=-1))


def span_basis(vectors: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (rows) of the span of the L2-normalised vectors."""
    x = l2_normalize(np.asarray(vectors, dtype=np.float64))
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > tol * s.max()
    return vt[keep]


def distance_weighted_probabilities(
    target_vectors: np.ndarray, seen_vectors: np.ndarray, seen_probs: np.ndarray
) -> np.ndarray:
    """Published distance-weighted prediction: w_uj = cos(x_u, x_j) / sum_j cos(x_u, x_j) over the
    seen tasks; head probabilities = sum_j w_uj pi(.|x_j)."""
    cos = l2_normalize(target_vectors) @ l2_normalize(seen_vectors).T
    weights = cos / cos.sum(axis=1, keepdims=True)
    return np.einsum("uj,jhk->uhk", weights, seen_probs)


__all__ = [
    "Controller",
    "ControllerConfig",
    "LOSSES",
    "actions_to_index",
    "actions_to_setting",
    "distance_weighted_probabilities",
    "index_to_actions",
    "lr_at_epoch",
    "noise_at_epoch",
    "span_basis",
]
