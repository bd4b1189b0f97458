"""Centered Kernel Alignment between backbones, stage by stage (reference 8; supplementary Figure 1).

CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with Gram matrices K = k(X, X), L = k(Y, Y).
HSIC is the *unbiased* estimator (Song et al. 2012). Following Nguyen et al. (ICLR 2021), it is
averaged over minibatches and CKA is formed from the averaged HSIC values, so memory depends on the
batch size, not on the number of examples. Kernels: linear (Kornblith's default; the paper does
not say which it used) or RBF with bandwidth ``sigma`` x median distance. Spatial stage maps are
reduced by global average pooling (default) or flattened; the paper does not state which either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import T2SError

STAGES = (1, 2, 3, 4)


def gram(x, kernel: str = "linear", sigma: float = 1.0):
    """Gram matrix of the rows of ``x`` ([n, d], float64)."""
    import torch

    x = x.reshape(x.shape[0], -1).double()
    if kernel == "linear":
        return x @ x.T
    if kernel == "rbf":
        sq = x.pow(2).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)
        med = d2.median()  # Kornblith et al.: bandwidth relative to the median squared distance
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


# ---------------------------------------------------------------------------------------------
def _reduce(feature, how: str):
    if how == "pool":
        return feature.float().mean(dim=(2, 3))
    if how == "flatten":
        return feature.float().flatten(1)
    raise T2SError(f"unknown stage reduction {how!r}", "use pool or flatten")


def stage_models(backbones: Mapping[str, Any], task_name: str, stages: Sequence[int] = STAGES) -> dict[str, Any]:
    """``features_only`` models for each backbone; a value may be a path, ``scratch:<arch>``, a model,
    or a ``{task: path}`` mapping (fine-tuned backbones, one per task)."""
    from .train.models import init_stage_model, load_stage_model

    models = {}
    for name, spec in backbones.items():
        if isinstance(spec, Mapping):
            if task_name not in spec:
                raise T2SError(f"backbone {name!r} has no fine-tuned checkpoint for task {task_name!r}",
                               "fine-tune it on that task (t2s evaluate --protocol finetune --save-model) or drop the task")
            spec = spec[task_name]
        if hasattr(spec, "forward"):
            models[name] = spec
        elif str(spec).startswith("scratch:"):
            models[name] = init_stage_model(str(spec).split(":", 1)[1], stages=stages)
        else:
            models[name] = load_stage_model(spec, stages=stages)
    return models


def cka_matrices(backbones: Mapping[str, Any], tasks: Sequence[Any], *, img_size: int = 224, batch_size: int = 256,
                 max_images: int | None = None, epochs: int = 1, kernel: str = "linear", reduce: str = "pool",
                 split: str = "test", device: str = "auto", workers: int = 0, seed: int = 0,
                 progress: bool = False) -> dict[str, Any]:
    """Backbone x backbone CKA per stage, per task and averaged over the tasks.

    Returns ``{"names", "stages", "tasks", "per_task": {task: [S, B, B]}, "mean": [S, B, B]}`` (numpy).
    """
    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .device import resolve_device
    from .evaluate.features import Transformed
    from .evaluate.run import _subset, resolve_task
    from .train.data import eval_transform

    dev = resolve_device(device)
    names = list(backbones)
    if len(names) < 1 or not tasks:
        raise T2SError("CKA needs at least one backbone and one task")
    per_task: dict[str, Any] = {}
    for task_spec in tasks:
        task = resolve_task(task_spec)
        models = {n: m.to(dev).eval() for n, m in stage_models(backbones, task.name).items()}
        ds = _subset(task.dataset(split), max_images, seed)
        bs = min(batch_size, len(ds))
        if bs < 4:
            raise T2SError(f"task {task.name!r}: {len(ds)} images in split {split!r}, CKA needs at least 4")
        accs = [MinibatchCKA(names, kernel) for _ in STAGES]
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            loader = DataLoader(Transformed(ds, eval_transform(img_size)), batch_size=bs, shuffle=True, drop_last=True,
                                generator=g, num_workers=workers)
            for images, _labels in tqdm(loader, desc=f"CKA {task.name}", disable=not progress, leave=False):
                images = images.to(dev)
                with torch.inference_mode():
                    outs = {n: [_reduce(f, reduce) for f in m(images)] for n, m in models.items()}
                for s, acc in enumerate(accs):
                    acc.update({n: outs[n][s] for n in names})
        per_task[task.name] = np.stack([a.matrix() for a in accs])
    mean = np.mean(np.stack(list(per_task.values())), axis=0)
    return {"names": names, "stages": list(STAGES), "tasks": list(per_task), "per_task": per_task, "mean": mean,
            "options": {"kernel": kernel, "reduce": reduce, "img_size": img_size, "batch_size": batch_size,
                        "epochs": epochs, "max_images": max_images, "split": split}}


def save_cka(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write a :func:`cka_matrices` result as ``<path>.npz`` (+ ``.json`` with names/options), atomically."""
    import numpy as np

    from .io import atomic_path, write_json

    path = Path(path).with_suffix(".npz")
    arrays = {"mean": result["mean"], **{f"task__{t}": m for t, m in result["per_task"].items()}}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    write_json(path.with_suffix(".json"), {k: result[k] for k in ("names", "stages", "tasks", "options")})
    return path


def load_cka(path: str | Path) -> dict[str, Any]:
    import json

    import numpy as np

    path = Path(path).with_suffix(".npz")
    if not path.is_file():
        raise T2SError(f"{path} not found", "run `t2s cka` first")
    meta = json.loads(path.with_suffix(".json").read_text())
    with np.load(path) as z:
        per_task = {t: z[f"task__{t}"] for t in meta["tasks"]}
        mean = z["mean"]
    return {**meta, "per_task": per_task, "mean": mean}


def plot_cka(result: Mapping[str, Any], title: str = "", matrix: Any = None, labels: Sequence[str] | None = None):
    """Four heat maps (stages 1-4) of a backbone x backbone CKA matrix, as in supplementary Figure 1."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    mats = result["mean"] if matrix is None else matrix
    labels = list(labels or result["names"])
    # long labels (setting names) would crush the panels: number the axes and print a key below
    short = [str(i + 1) for i in range(len(labels))] if max(map(len, labels)) > 8 else labels
    fig, axes = plt.subplots(1, len(mats), figsize=(3.0 * len(mats) + 1, 3.4), squeeze=False)
    for s, ax in enumerate(axes[0]):
        sns.heatmap(mats[s], vmin=0, vmax=1, cmap="magma", annot=len(labels) <= 6, fmt=".2f", square=True,
                    xticklabels=short, yticklabels=short if s == 0 else False, cbar=s == len(mats) - 1, ax=ax,
                    annot_kws={"fontsize": 7})
        ax.set_title(f"Stage {result['stages'][s]}")
    if short is not labels:
        fig.text(0.01, -0.02, "   ".join(f"{a} = {b}" for a, b in zip(short, labels)), fontsize=8, ha="left", va="top")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def cka_study(prof: Mapping[str, Any], backbones: Mapping[str, Any], *, tag: str = "before",
              tasks: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Notebook 06: CKA matrices with the profile's ``cka:`` options, saved to ``runs/<profile>/cka/<tag>.npz``."""
    from .profiles import section

    sec = section(prof, "cka")
    kw = {k: sec[k] for k in ("img_size", "batch_size", "max_images", "epochs", "kernel", "reduce", "split") if k in sec}
    res = cka_matrices(backbones, list(tasks if tasks is not None else sec.get("tasks", [])),
                       device=prof.get("device", "auto"), seed=int(prof.get("seed", 0)), progress=progress, **kw)
    save_cka(res, Path(prof["run_dir"]) / "cka" / tag)
    return res
