"""Task2Vec at study scale: embed a profile's tasks, the fraction experiment (supp. Table 1)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..ledger import Ledger, decode_array, encode_array
from ..ledger import active as active_ledger
from ..paths import safe_name
from ..profiles import Profile
from .distances import cosine_similarity, task2vec_distance
from .embed import Embedding, Task2VecOptions, embed_task

TASK2VEC_KIND = "task2vec.vector"

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


class ProfileEmbedder:
    """Task2Vec vectors of a profile's tasks through the results ledger: a vector the ledger holds is
    used as it is; otherwise it is measured (training the profile's probe first, once per machine, only
    then) and recorded. Its identity is the task, the probe (its recipe, checkpoint digest, or random
    initialisation) and the embedding options."""

    def __init__(self, prof: Profile, *, log: Callable[[str], None] = print, ledger: Ledger | None = None):
        self.prof, self.log = prof, log
        self.sec = prof.task2vec
        self.ledger = ledger or active_ledger(prof.name)
        self._probe: str | None | bool = False  # False: not resolved yet

    def probe_identity(self) -> dict[str, Any]:
        sec = self.sec
        if sec.probe_checkpoint:
            digest = hashlib.sha256(Path(sec.probe_checkpoint).expanduser().read_bytes()).hexdigest()[:16]
            return {"arch": sec.probe, "checkpoint_sha256": digest}
        if sec.probe_recipe:
            return {"arch": sec.probe, "recipe": sec.probe_recipe}
        return {"arch": sec.probe, "random_init": True}

    def base_options(self, **overrides: Any) -> Task2VecOptions:
        return dataclasses.replace(self.sec.options(), **overrides).check()

    def identity(self, task: str, **overrides: Any) -> dict[str, Any]:
        options = self.base_options(**overrides).as_dict()
        for key in ("probe_checkpoint", "on_bad_image"):  # the probe is identified above; skipping is not a number
            options.pop(key, None)
        return {"task": task, "probe": self.probe_identity(), "options": options}

    def _probe_checkpoint(self) -> str | None:
        if self._probe is False:
            self._probe = probe_checkpoint_of(self.prof, log=self.log)
        return self._probe

    def embed(self, task: str, **overrides: Any) -> Embedding:
        """The vector of ``task`` with the section's options (``overrides``: fraction, seed, ...)."""
        def measure() -> dict[str, Any]:
            opts = dataclasses.replace(self.base_options(**overrides), probe_checkpoint=self._probe_checkpoint())
            emb = embed_task(task, opts, device=self.prof.device, threads=self.sec.threads,
                             root=self.prof.tasks.data_root, cache=self.ledger.mode != "recompute")
            meta = {k: v for k, v in emb.meta.items() if k != "from_cache"}
            return {"dim": int(emb.hessian.size), "hessian": encode_array(emb.hessian),
                    "scale": encode_array(emb.scale), "meta": meta}

        identity = self.identity(task, **overrides)
        if not self.ledger.holds(TASK2VEC_KIND, identity) and self.ledger.mode != "replay":
            self._probe_checkpoint()  # trained once per machine, before (not as part of) the vector's timed unit
        value = self.ledger.measure(TASK2VEC_KIND, identity, measure,
                                    what=f"the Task2Vec vector of {task} {overrides or ''}".strip())
        where = f"{self.ledger.path(TASK2VEC_KIND)} ({task})"
        return Embedding(hessian=decode_array(value["hessian"], where), scale=decode_array(value["scale"], where),
                         meta=dict(value["meta"]))


def embed_profile(prof: Profile, out_dir: str | Path | None = None, *, tasks: Sequence[str] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Embedding]:
    """Embed every task of a profile into ``<run_dir>/task2vec/<task>.npz`` (+ ``.json``); resumable.

    Each vector comes from the results ledger when it holds it (:class:`ProfileEmbedder`); the heavy
    work is also cached per machine under ``<cache>/task2vec`` by (data, probe weights, options).
    """
    embedder = ProfileEmbedder(prof, log=log)
    seen, unseen = profile_tasks(prof)
    names = list(tasks) if tasks is not None else seen + unseen
    layout = prof.layout
    result: dict[str, Embedding] = {}
    for name in names:
        emb = embedder.embed(name)
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


def fraction_experiment(task: str, fractions: Sequence[float], embed: Callable[..., Embedding], *,
                        predict: Callable[[np.ndarray], Any] | None = None,
                        save_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Supplementary Table 1: embeddings from fractions of the training data vs the 100 % vector.

    Each fraction is a class-stratified subsample (same seed); the Fisher draws the same number
    of samples from it, so only the data changes. ``predict`` (optional) maps a hessian to the
    policy's predicted setting, reported per fraction. With ``save_dir`` every vector is also
    written as ``<save_dir>/<task>__f<fraction>.npz`` (+ ``.json``), e.g. for the policy stage.
    ``embed(task, fraction=f)`` gives a vector (:meth:`ProfileEmbedder.embed`).
    """
    full = embed(task, fraction=1.0)
    rows = []
    for f in fractions:
        emb = full if float(f) == 1.0 else embed(task, fraction=float(f))
        if save_dir is not None:
            emb.save(Path(save_dir) / f"{task}__f{float(f):g}.npz")
        row = {"task": task, "fraction": float(f), "images": emb.meta.get("images_used"),
               "cosine_to_full": cosine_similarity(emb.hessian, full.hessian),
               "task2vec_distance_to_full": task2vec_distance(emb.hessian, full.hessian)}
        if predict is not None:
            row["predicted_setting"] = str(predict(emb.hessian))
        rows.append(row)
    return rows
