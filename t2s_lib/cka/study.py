"""CKA at study scale: stage-wise features of several backbones on task images, backbone x backbone
matrices per stage, per task and averaged over tasks (reference 8; supplementary Figure 1), saved
as ``<stem>.npz`` + ``<stem>.json``. Spatial stage maps are reduced by global average pooling
(default) or flattened; the paper does not say which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import T2SError
from ..ledger import active as active_ledger
from ..paths import LIVE256_SUFFIX
from ..profiles import Profile
from .maths import MinibatchCKA

STAGES = (1, 2, 3, 4)
CKA_KIND = "cka.task"


def _reduce(feature, how: str):
    if how == "pool":
        return feature.float().mean(dim=(2, 3))
    if how == "flatten":
        return feature.float().flatten(1)
    raise T2SError(f"unknown stage reduction {how!r}", "use pool or flatten")


def stage_models(backbones: Mapping[str, Any], task_name: str, stages: Sequence[int] = STAGES) -> dict[str, Any]:
    """``features_only`` models for each backbone; a value may be a path, ``scratch:<arch>``, a model,
    or a ``{task: path}`` mapping (fine-tuned backbones, one per task)."""
    from ..train.models import init_stage_model, load_stage_model

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

    from ..device import resolve_device
    from ..evaluate.features import Transformed
    from ..evaluate.run import _subset, resolve_task
    from ..train.data import eval_transform

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

    from ..files import atomic_path, write_json

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


def cka_tasks(prof: Profile) -> list[str]:
    """The tasks of ``cka.tasks`` that every backbone has: less the tasks the 256-setting study drops
    (``table256.drop_tasks``, e.g. one at the 5-NN ceiling) when "Task2Sim" is its controller, which
    picks nothing for them."""
    dropped = set(prof.table256.drop_tasks) if prof.policy.task2sim.endswith(LIVE256_SUFFIX) else set()
    return [t for t in prof.cka.tasks if t not in dropped]


def cka_study(prof: Profile, backbones: Mapping[str, Any], *, tag: str = "before",
              tasks: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Notebook 06: CKA matrices with the profile's ``cka:`` options, saved to ``runs/<profile>/cka/<tag>.npz``.

    ``backbones``: name -> a backbone with ``identity`` and ``load_spec()`` (a reward cell's
    :class:`~t2s_lib.rewards.study.Backbone`, a :class:`~t2s_lib.evaluate.study.FineTuned`), or a
    ``{task: backbone}`` mapping (one per task). Each task's matrix goes through the results ledger, so a
    held one needs no backbone at all."""
    import numpy as np

    sec = prof.cka
    options = {"kernel": sec.kernel, "reduce": sec.reduce, "img_size": sec.img_size, "batch_size": sec.batch_size,
               "epochs": sec.epochs, "max_images": sec.max_images, "split": "test"}
    ledger = active_ledger(prof.name)
    names = list(backbones)
    per_task: dict[str, Any] = {}
    for task in list(tasks if tasks is not None else cka_tasks(prof)):
        members = {}
        for name, bb in backbones.items():
            if isinstance(bb, Mapping):
                if task not in bb:
                    raise T2SError(f"backbone {name!r} has no backbone for task {task!r}", "give one per task, or drop the task")
                bb = bb[task]
            members[name] = bb
        identity = {"task": task, "names": names, "backbones": {n: m.identity for n, m in members.items()},
                    "options": options, "seed": prof.seed}

        def measure(members=members, task=task) -> dict[str, Any]:
            res = cka_matrices({n: m.load_spec() for n, m in members.items()}, [task], device=prof.device,
                               seed=prof.seed, progress=progress, **options)
            return {"matrix": res["per_task"][res["tasks"][0]].tolist()}

        value = ledger.measure(CKA_KIND, identity, measure, what=f"CKA {tag} on {task}")
        per_task[task] = np.asarray(value["matrix"], dtype=np.float64)
    mean = np.mean(np.stack(list(per_task.values())), axis=0)
    res = {"names": names, "stages": list(STAGES), "tasks": list(per_task), "per_task": per_task, "mean": mean,
           "options": options}
    save_cka(res, prof.layout.cka_result(tag))
    return res
