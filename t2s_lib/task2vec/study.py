"""Task2Vec at study scale: embed a profile's tasks, the fraction experiment (supp. Table 1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..paths import safe_name
from ..profiles import Profile
from .distances import cosine_similarity, task2vec_distance
from .embed import Embedding, Task2VecOptions, embed_task

def profile_tasks(prof: Profile) -> tuple[list[str], list[str]]:
    """(seen, unseen) task names of a profile's ``tasks`` section."""
    return list(prof.tasks.seen), list(prof.tasks.unseen)


def probe_checkpoint_of(prof: Profile, *, log: Callable[[str], None] = print) -> str | None:
    """The profile's probe weights: its ``probe_checkpoint``, or the probe trained by its ``probe_recipe``
    (trained once per machine and cached), or None (the fixed-seed random-init probe)."""
    sec = prof.task2vec
    if sec.probe_checkpoint or not sec.probe_recipe:
        return sec.probe_checkpoint
    from .trained_probe import ProbeRecipe, probe_checkpoint

    return str(probe_checkpoint(ProbeRecipe(**sec.probe_recipe), device=prof.device,
                                render_workers=prof.render.workers, log=log))


def embed_profile(prof: Profile, out_dir: str | Path | None = None, *, tasks: Sequence[str] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Embedding]:
    """Embed every task of a profile into ``<run_dir>/task2vec/<task>.npz`` (+ ``.json``); resumable.

    The heavy work is cached under ``<cache>/task2vec`` by (data, probe weights, options), so a
    rerun only re-writes the per-profile copies.
    """
    sec = prof.task2vec
    opts = sec.options(probe_checkpoint=probe_checkpoint_of(prof, log=log))
    seen, unseen = profile_tasks(prof)
    names = list(tasks) if tasks is not None else seen + unseen
    layout = prof.layout
    result: dict[str, Embedding] = {}
    for name in names:
        emb = embed_task(name, opts, device=prof.device, threads=sec.threads, root=prof.tasks.data_root)
        emb.meta["split_role"] = "seen" if name in seen else ("unseen" if name in unseen else "other")
        emb.save(Path(out_dir) / f"{safe_name(name)}.npz" if out_dir else layout.task_vector(name))
        t = emb.meta.get("timing_s", {})
        log(f"[task2vec] {name}: dim {emb.hessian.size}, |h| {np.linalg.norm(emb.hessian):.3g}, "
            f"{'cached' if 'from_cache' in emb.meta else f'{sum(t.values()):.1f} s'}")
        result[name] = emb
    return result


def load_embeddings(folder: str | Path, names: Sequence[str] | None = None) -> dict[str, Embedding]:
    folder = Path(folder)
    files = sorted(folder.glob("*.npz")) if names is None else [folder / f"{n}.npz" for n in names]
    return {f.stem: Embedding.load(f) for f in files}


def fraction_experiment(task: str, fractions: Sequence[float], opts: Task2VecOptions, *, device: str = "auto",
                        threads: int | None = None, root: str | None = None,
                        predict: Callable[[np.ndarray], Any] | None = None,
                        save_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Supplementary Table 1: embeddings from fractions of the training data vs the 100 % vector.

    Each fraction is a class-stratified subsample (same seed); the Fisher draws the same number
    of samples from it, so only the data changes. ``predict`` (optional) maps a hessian to the
    policy's predicted setting, reported per fraction. With ``save_dir`` every vector is also
    written as ``<save_dir>/<task>__f<fraction>.npz`` (+ ``.json``), e.g. for the policy stage.
    """
    full = embed_task(task, dataclasses.replace(opts, fraction=1.0), device=device, threads=threads, root=root)
    rows = []
    for f in fractions:
        emb = full if float(f) == 1.0 else embed_task(task, dataclasses.replace(opts, fraction=float(f)),
                                                      device=device, threads=threads, root=root)
        if save_dir is not None:
            emb.save(Path(save_dir) / f"{task}__f{float(f):g}.npz")
        row = {"task": task, "fraction": float(f), "images": emb.meta.get("images_used"),
               "cosine_to_full": cosine_similarity(emb.hessian, full.hessian),
               "task2vec_distance_to_full": task2vec_distance(emb.hessian, full.hessian)}
        if predict is not None:
            row["predicted_setting"] = str(predict(emb.hessian))
        rows.append(row)
    return rows
