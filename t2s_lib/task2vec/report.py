"""Tables and figures of the Task2Vec notebook (02_task2vec)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..profiles import Profile
from ..verdicts import Interval, t_interval_over_tasks, verdict
from .distances import cosine_similarity, cosine_similarity_matrix, published_vectors, task2vec_distance
from .embed import Embedding, published_layout
from .study import fraction_experiment


def top_share(h: np.ndarray, k: int = 10) -> float:
    """Share of the squared norm carried by the k largest entries (reference section 1)."""
    sq = np.sort(np.asarray(h, dtype=np.float64) ** 2)[::-1]
    return float(sq[:k].sum() / max(sq.sum(), 1e-30))


def embedding_table(embs: Mapping[str, Embedding]):
    import pandas as pd

    rows = []
    for name, e in embs.items():
        t = e.meta.get("timing_s", {})
        rows.append({
            "task": name, "role": e.meta.get("split_role", ""), "classes": e.meta.get("num_classes"),
            "images": e.meta.get("images_used"), "fisher_images": e.meta.get("fisher_images"),
            "norm": float(np.linalg.norm(e.hessian)), "zeros": int((e.hessian == 0).sum()),
            "top10_share": top_share(e.hessian), "seconds": round(float(sum(t.values())), 1) if t else np.nan,
            "weights": e.meta.get("weights", {}).get("weights"),
        })
    return pd.DataFrame(rows).set_index("task")


def combined_vectors(embs: Mapping[str, Embedding]) -> tuple[list[str], np.ndarray, int]:
    """Published 20 vectors followed by the given ones; returns (names, H, number of published)."""
    names, H = published_vectors()
    own = [f"{n} (ours)" for n in embs]
    return names + own, np.concatenate([H, np.stack([e.hessian for e in embs.values()])]), len(names)


def similarity_heatmap(names: Sequence[str], H: np.ndarray, n_published: int, ax=None):
    """Cosine similarity of L2-normalised vectors (the policy's view), published block first."""
    import matplotlib.pyplot as plt

    S = cosine_similarity_matrix(H)
    # published (ImageNet probe) and ours (another probe) are not comparable: no cross-block values
    S[:n_published, n_published:] = np.nan
    S[n_published:, :n_published] = np.nan
    if ax is None:
        _, ax = plt.subplots(figsize=(0.38 * len(names) + 2, 0.38 * len(names) + 1))
    im = ax.imshow(S, vmin=0, vmax=1, cmap="viridis")
    ax.grid(False)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for pos in (n_published - 0.5,):
        ax.axhline(pos, color="w", lw=1.5)
        ax.axvline(pos, color="w", lw=1.5)
    ax.figure.colorbar(im, ax=ax, fraction=0.04, label="cosine similarity")
    ax.set_title("Task2Vec cosine similarity: published (ImageNet probe) | ours (probe in metadata);\n"
                 "different probes are not comparable, so the cross blocks are left empty", fontsize=9)
    return ax.figure, S


def layer_profile(embs: Mapping[str, Embedding], ax=None):
    """Mean Fisher per layer (published layout order), normalised per task to sum 1."""
    import matplotlib.pyplot as plt

    lay = published_layout()
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.5))
    names, H = published_vectors()
    def per_layer(h):
        v = np.array([h[s["start"]:s["end"]].mean() for s in lay])
        return v / max(v.sum(), 1e-30)
    ax.plot(per_layer(H.mean(0)), "k--", lw=2, label="published mean (ImageNet probe)")
    for name, e in embs.items():
        if e.hessian.size == lay[-1]["end"]:
            ax.plot(per_layer(e.hessian), lw=1, label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(len(lay)), [s["module"] for s in lay], rotation=90, fontsize=6)
    ax.set_ylabel("share of mean Fisher")
    ax.legend(fontsize=7, ncol=4)
    return ax.figure


def seed_pair(task: str, embedder):
    """The task's embedding and the one with the next seed: the seed-to-seed noise floor (in the results
    ledger, so notebook 02's fraction table and notebook 05's premise share the computation).
    ``embedder``: a :class:`~t2s_lib.task2vec.study.ProfileEmbedder`."""
    return embedder.embed(task), embedder.embed(task, seed=embedder.sec.seed + 1)


def fraction_table(prof: Profile, *, predict=None):
    """Supplementary Table 1 on the profile's ``fraction_tasks`` plus a seed-to-seed noise floor.

    Vectors go to ``<run_dir>/task2vec/fractions/<task>__f<fraction>.npz``; ``predict`` (a
    function hessian -> setting, e.g. a fitted policy) adds the predicted setting per fraction.
    """
    import pandas as pd

    from .study import ProfileEmbedder

    sec = prof.task2vec
    embedder = ProfileEmbedder(prof)
    rows = []
    for task in sec.fraction_tasks:
        rows += fraction_experiment(task, sec.fractions, embedder.embed, predict=predict,
                                    save_dir=prof.layout.task2vec_fractions)
        # same data and options, another seed: how close two 100 % vectors are anyway
        full, other = seed_pair(task, embedder)
        rows.append({"task": task, "fraction": "1.0, seed+1", "images": other.meta.get("images_used"),
                     "cosine_to_full": cosine_similarity(other.hessian, full.hessian),
                     "task2vec_distance_to_full": task2vec_distance(other.hessian, full.hessian)})
    return pd.DataFrame(rows)


#: non-inferiority margin of Table 1's vector check: a fraction's vector may be this much less
#: similar (cosine) to the 100 % vector than a second seed of the 100 % vector is
TABLE1_COSINE_MARGIN = 0.01


def table1_finding(frac) -> tuple[str, str, Interval]:
    """Supplementary Table 1's finding (no degradation with fewer examples) on the vectors: per task,
    the lowest cosine of a 10-50 % vector to the 100 % one minus the cosine of a second seed of the
    100 % vector (the noise floor). Non-inferiority: holds when the 95 % t interval over the tasks
    (3 fraction tasks: 2 df) lies above ``-TABLE1_COSINE_MARGIN``. (The policy-level Table 1 is notebook 09's.)"""
    rows = frac[frac["fraction"].map(lambda f: isinstance(f, float))]
    floor = frac[frac["fraction"].map(lambda f: isinstance(f, str))].set_index("task")["cosine_to_full"]
    parts, gaps = [], []
    for task in sorted(set(rows["task"])):
        sub = rows[(rows["task"] == task) & (rows["fraction"] < 1.0)]
        worst = float(sub["cosine_to_full"].min()) if len(sub) else float("nan")
        noise = float(floor.get(task, np.nan))
        gaps.append(worst - noise)
        parts.append(f"{task}: {worst:.3f} vs seed floor {noise:.3f}")
    iv = t_interval_over_tasks(gaps, "one vector seed per fraction")
    result = verdict(iv, +1, threshold=-TABLE1_COSINE_MARGIN)
    return result, (f"lowest cosine of a 10-50 % vector to the 100 % one minus a second seed's cosine: {iv.text(3)} "
                    f"(95 % {iv.method}; non-inferiority margin {TABLE1_COSINE_MARGIN}); " + "; ".join(parts)), iv
