"""Running one reward-table cell: render -> pre-train -> 5-NN on every task, each stage resumable.

Layout of a cell (``<table>/cells/<setting_key>/s<seed>/``)::

    images/           the rendered set (removed once pre-training is complete, unless keep_images)
    pretrain/         the run folder (config.json, checkpoint.pt: the stored backbone, metrics.jsonl)
    cell.json         written when render + pre-training are complete: the cell's manifest
    knn/<task>.json   one 5-NN result per task (the done marker of that evaluation)
    knn_val/<task>.json  5-NN on a validation split of the task's training data (spec.validation)
    linear/<task>.json   linear probe of the backbone (spec.linear)

Every stage skips what is complete and resumes what is partial (rendering by chunks, pre-training
from its checkpoint, 5-NN per task), and every file appears atomically, so ``kill -9`` at any
moment followed by a rerun gives the same numbers as an uninterrupted run. A damaged JSON file
(emptied, truncated, edited: :func:`read_result`, :func:`read_manifest`) counts as missing, so
its stage runs again, as a damaged image or checkpoint is redone. A ``scratch`` cell has
no images and no pre-training: its backbone is the randomly initialised architecture.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from ..device import torch_threads
from ..errors import T2SError
from ..files import write_json
from ..paths import safe_name
from ..procs import output_lock
from ..published import REWARD_RANGE
from .spec import Cell, RewardSpec


def cell_dir(table: Path, cell: Cell) -> Path:
    return Path(table) / "cells" / cell.setting / f"s{cell.seed}"


def checkpoint_path(table: Path, cell: Cell) -> Path:
    return cell_dir(table, cell) / "pretrain" / "checkpoint.pt"


def backbone_spec(table: Path, spec: RewardSpec, cell: Cell) -> str:
    """What :func:`t2s_lib.evaluate.run.evaluate_backbone` loads for this cell."""
    arch = spec.recipe.get("arch", "resnet50")
    return f"scratch:{arch}" if cell.is_scratch else str(checkpoint_path(table, cell))


def knn_path(table: Path, cell: Cell, task: str) -> Path:
    return cell_dir(table, cell) / "knn" / f"{safe_name(task)}.json"


def linear_path(table: Path, cell: Cell, task: str) -> Path:
    return cell_dir(table, cell) / "linear" / f"{safe_name(task)}.json"


def knn_val_path(table: Path, cell: Cell, task: str) -> Path:
    return cell_dir(table, cell) / "knn_val" / f"{safe_name(task)}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """A cell's JSON file as a dict, or None when it is missing or damaged (emptied, truncated, not
    a JSON object): one bad file then means "run that stage again", not a failed build."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for binary garbage
        return None
    return record if isinstance(record, dict) else None


def read_result(path: Path) -> dict[str, Any] | None:
    """A 5-NN / linear-probe result whose ``value`` is an accuracy in percent, else None (missing or damaged)."""
    record = read_record(path)
    value = record.get("value") if record is not None else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return record if REWARD_RANGE[0] <= value <= REWARD_RANGE[1] else None


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A cell's ``cell.json`` (with its ``final_epoch``), else None (missing or damaged)."""
    record = read_record(path)
    return record if record is not None and isinstance(record.get("final_epoch"), dict) else None


def cell_done(table: Path, spec: RewardSpec, cell: Cell) -> bool:
    def ok(path: Path) -> bool:
        return read_result(path) is not None

    return (cell.is_scratch or read_manifest(cell_dir(table, cell) / "cell.json") is not None) and all(
        ok(knn_path(table, cell, t)) and (not spec.validation or ok(knn_val_path(table, cell, t)))
        and (spec.linear is None or ok(linear_path(table, cell, t))) for t in spec.tasks)


def _to_run(path: Path, record: dict[str, Any] | None, log) -> bool:
    """Whether the stage that writes ``path`` runs: its file is missing, or damaged (said, then rewritten)."""
    if record is not None:
        return False
    if path.exists():
        log(f"[rewards] {path} is damaged (not a complete record): recomputing it")
    return True


def _render(table: Path, spec: RewardSpec, cell: Cell, workers: int) -> Path:
    from ..render import RenderJob, run_render_job

    r = dict(spec.render)
    classes = r.pop("classes")
    job = RenderJob.create(cell.setting, r.pop("images"), r.pop("img_size"), seed=cell.seed, classes=classes,
                           workers=workers, **r)
    return run_render_job(job, cell_dir(table, cell) / "images", progress=False)


def _pretrain(table: Path, spec: RewardSpec, cell: Cell, images: Path, device: str, gpus: int) -> dict[str, Any]:
    from ..train.config import PretrainConfig
    from ..train.loop import pretrain, read_metrics

    out = cell_dir(table, cell) / "pretrain"
    cfg = PretrainConfig(**{**spec.recipe, "data": str(images), "out": str(out), "seed": spec.pretrain_seed(cell),
                            "device": device, "progress": False}).check(f"reward cell {cell.name}")
    if gpus > 1:  # several GPUs in one job: torchrun inside the job (DDP), same config through the CLI
        _torchrun(cfg, gpus)
    else:
        pretrain(cfg)
    metrics = read_metrics(out)
    last = metrics.iloc[-1].to_dict()
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in last.items()}


def _torchrun(cfg, gpus: int) -> None:
    import subprocess
    import sys

    values = cfg.to_dict()
    # every recipe field explicitly (None as "none"), so the job trains exactly this config
    flags = ["--arch", cfg.arch, "--device", cfg.device]
    for f in type(cfg).flag_fields():
        flags += [f"--{f.name.replace('_', '-')}", "none" if values[f.name] is None else str(values[f.name])]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "-m", "t2s_lib.train",
           cfg.data, "--out", cfg.out, "--no-progress", *flags]
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise T2SError(f"torchrun pre-training of {cfg.out} failed (exit {proc.returncode})",
                       "see the job's log; rerunning resumes from the last checkpoint")


def _knn(table: Path, spec: RewardSpec, cell: Cell, task: str, device: str,
         features: dict | None = None) -> dict[str, Any]:
    """Test-split 5-NN; with ``features`` given, the training split's features are left there for
    the validation 5-NN (same images, same eval-mode backbone: one feature pass for both)."""
    from ..evaluate.run import EvalOptions, evaluate_backbone

    opts = EvalOptions(protocol="knn", device=device, seed=cell.seed, **spec.knn).check(f"reward cell {cell.name}")
    row = evaluate_backbone(backbone_spec(table, spec, cell), task, opts, name=cell.setting,
                            keep_features=features is not None)
    if features is not None and "train_features" in row:
        features[task] = row["train_features"]
    return {"task": task, "setting": cell.setting, "seed": cell.seed, "metric": "knn_top1", "value": row["value"],
            "options": row["options"], "seconds": row["seconds"]}


def _linear(table: Path, spec: RewardSpec, cell: Cell, task: str, device: str) -> dict[str, Any]:
    """Linear probe of the cell's backbone on the task (reference 7.2; the profile's linear options)."""
    from ..evaluate.run import EvalOptions, evaluate_backbone

    opts = EvalOptions(**{**spec.linear, "protocol": "linear", "device": device, "seed": cell.seed}).check(
        f"reward cell {cell.name}")
    row = evaluate_backbone(backbone_spec(table, spec, cell), task, opts, name=cell.setting)
    return {"task": task, "setting": cell.setting, "seed": cell.seed, "metric": "linear_top1", "value": row["value"],
            "options": row["options"], "seconds": row["seconds"]}


def _knn_val(table: Path, spec: RewardSpec, cell: Cell, task: str, device: str,
             features: tuple | None = None) -> dict[str, Any]:
    """5-NN on the task's validation split (carved from its training data): what measured selection
    would observe, kept apart from the test-split reward. ``features``: the training split's
    features from the test 5-NN of this backbone (else they are extracted here)."""
    from ..evaluate.validation import ValidationSplit
    from ..tasks import get_task

    t0 = time.perf_counter()
    split = ValidationSplit(get_task(task), spec.knn, seed=cell.seed)
    if features is not None:
        value = split.accuracy_from_features(*features)
    else:
        value = split.accuracy(backbone_spec(table, spec, cell), device)
    return {"task": task, "setting": cell.setting, "seed": cell.seed, "metric": "knn_val_top1", "value": round(value, 4),
            **split.sizes, "seconds": round(time.perf_counter() - t0, 2)}


def run_cell(table: str | Path, spec: RewardSpec, cell: Cell, *, device: str | None = None, render_workers: int = 1,
             gpus: int = 1, log=print) -> dict[str, Any]:
    """Bring one cell to completion (skipping what is done); returns its manifest."""
    table = Path(table)
    device = device or spec.device
    folder = cell_dir(table, cell)
    folder.mkdir(parents=True, exist_ok=True)
    with output_lock(folder, f"reward cell {cell.name}"), torch_threads(spec.threads):
        manifest_path = folder / "cell.json"
        t0 = time.perf_counter()
        if not cell.is_scratch and _to_run(manifest_path, read_manifest(manifest_path), log):
            images = _render(table, spec, cell, render_workers)
            t_render = time.perf_counter() - t0
            last = _pretrain(table, spec, cell, images, device, gpus)
            meta = json.loads((images / "dataset.json").read_text())
            write_json(manifest_path, {"cell": cell.name, "setting": cell.setting, "seed": cell.seed,
                                       "pretrain_seed": spec.pretrain_seed(cell), "identity": spec.identity,
                                       "images": meta["n_images"], "classes": meta["n_classes"],
                                       "threads": spec.threads, "device": device,
                                       "final_epoch": last, "render_seconds": round(t_render, 1),
                                       "pretrain_seconds": round(time.perf_counter() - t0 - t_render, 1)})
            log(f"[rewards] {cell.name}: rendered and pre-trained ({time.perf_counter() - t0:.0f} s)")
        if not spec.keep_images and (folder / "images").exists():
            shutil.rmtree(folder / "images")
        for task in spec.tasks:
            path, val_path, lin_path = knn_path(table, cell, task), knn_val_path(table, cell, task), linear_path(table, cell, task)
            features: dict = {}
            if _to_run(path, read_result(path), log):
                write_json(path, _knn(table, spec, cell, task, device, features if spec.validation else None))
            if spec.validation and _to_run(val_path, read_result(val_path), log):
                write_json(val_path, _knn_val(table, spec, cell, task, device, features.get(task)))
            if spec.linear is not None and _to_run(lin_path, read_result(lin_path), log):
                write_json(lin_path, _linear(table, spec, cell, task, device))
        manifest = read_manifest(manifest_path) or {"cell": cell.name}
    return manifest
