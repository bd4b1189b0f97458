"""Running one reward-table cell: render -> pre-train -> 5-NN on every task, each stage resumable.

Layout of a cell (``<table>/cells/<setting_key>/s<seed>/``)::

    images/           the rendered set (removed once pre-training is complete, unless keep_images)
    pretrain/         the run folder (config.json, checkpoint.pt: the stored backbone, metrics.jsonl)
    cell.json         written when render + pre-training are complete: the cell's manifest
    knn/<task>.json   one 5-NN result per task (the done marker of that evaluation)
    knn_val/<task>.json  5-NN on a validation split of the task's training data (spec.validation)
    linear/<task>.json   linear probe of the backbone (spec.linear)

Every measurement is also a record of the profile's results ledger (:mod:`t2s_lib.ledger`): a cell whose
pre-training and evaluations the ledger holds is *replayed* (its ``cell.json``, per-epoch metrics and
result files written from the records, no rendering, training or 5-NN; its backbone is then not
stored), and a cell measured here appends its records.

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
from ..files import write_json, write_text
from ..ledger import Ledger, canonical, cpu_seconds, provenance
from ..ledger import active as active_ledger
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


def eval_path(table: Path, cell: Cell, task: str, kind: str) -> Path:
    """The result file of one evaluation (``kind``: knn, knn_val, linear) of a cell on ``task``."""
    return cell_dir(table, cell) / kind / f"{safe_name(task)}.json"


def knn_path(table: Path, cell: Cell, task: str) -> Path:
    return eval_path(table, cell, task, "knn")


def linear_path(table: Path, cell: Cell, task: str) -> Path:
    return eval_path(table, cell, task, "linear")


def knn_val_path(table: Path, cell: Cell, task: str) -> Path:
    return eval_path(table, cell, task, "knn_val")


#: ledger kind of each per-task evaluation of a cell (its result file's folder is the kind's suffix)
EVAL_KINDS = {"knn": "reward.knn", "knn_val": "reward.knn_val", "linear": "reward.linear"}
PRETRAIN_KIND = "reward.pretrain"


def cell_ledger(spec: RewardSpec) -> Ledger:
    """The ledger the cells of ``spec`` are recorded in (its profile's; ``adhoc`` for a table built
    without one)."""
    return active_ledger(spec.profile or "adhoc")


def cell_identity(spec: RewardSpec, cell: Cell) -> dict[str, Any]:
    """What determines a cell's backbone: the rendered set (render job, setting, seed) and the recipe and
    pre-training seed; for ``scratch``, the architecture and the seed of its initialisation."""
    arch = spec.recipe.get("arch", "resnet50")
    if cell.is_scratch:
        return {"backbone": f"scratch:{arch}", "seed": cell.seed}
    return {"setting": cell.setting, "seed": cell.seed, "pretrain_seed": spec.pretrain_seed(cell),
            "render": spec.render, "recipe": spec.recipe}


def eval_identity(spec: RewardSpec, cell: Cell, task: str, kind: str) -> dict[str, Any]:
    """What determines one evaluation of a cell's backbone on ``task`` (``kind``: knn, knn_val, linear)."""
    options = spec.linear if kind == "linear" else spec.knn
    split = "validation" if kind == "knn_val" else "test"
    return {**cell_identity(spec, cell), "task": task, "split": split, "protocol": kind, "options": options}


def evaluations(spec: RewardSpec) -> list[str]:
    """The per-task evaluations each cell of ``spec`` has (knn always; knn_val, linear by the spec)."""
    return ["knn"] + (["knn_val"] if spec.validation else []) + (["linear"] if spec.linear is not None else [])


def ledger_holds_cell(ledger: Ledger, spec: RewardSpec, cell: Cell) -> bool:
    """Whether the ledger holds every current record of the cell (it can be replayed whole)."""
    return (cell.is_scratch or ledger.holds(PRETRAIN_KIND, cell_identity(spec, cell))) and all(
        ledger.holds(EVAL_KINDS[e], eval_identity(spec, cell, t, e)) for t in spec.tasks for e in evaluations(spec))


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


def _pretrain(table: Path, spec: RewardSpec, cell: Cell, images: Path, device: str,
              gpus: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pre-train the cell's backbone; returns its final epoch's metrics and every epoch's (JSON-safe)."""
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
    # the log's own records, exactly (a DataFrame round trip would round the floats)
    epochs = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in json.loads(line).items()}
              for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in last.items()}, epochs


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


def ensure_backbone(table: str | Path, spec: RewardSpec, cell: Cell, *, device: str | None = None,
                    render_workers: int = 1, log=print) -> str:
    """What :func:`t2s_lib.evaluate.run.evaluate_backbone` loads for this cell, made if need be: a cell
    replayed from the ledger stores no backbone, so a later stage that needs its weights (linear probe,
    fine-tuning, CKA) gets it rendered and pre-trained again (same render job, recipe and seed)."""
    table = Path(table)
    if cell.is_scratch or checkpoint_path(table, cell).is_file():
        return backbone_spec(table, spec, cell)
    cell_ledger(spec).require_measuring(PRETRAIN_KIND, f"the backbone of cell {cell.name} (a later stage needs "
                                                       "its weights)")
    folder = cell_dir(table, cell)
    with output_lock(folder, f"reward cell {cell.name}"), torch_threads(spec.threads):
        if not checkpoint_path(table, cell).is_file():
            log(f"[rewards] {cell.name}: pre-training its backbone again (the cell came from the ledger)")
            shutil.rmtree(folder / "pretrain", ignore_errors=True)  # the replayed log; training writes its own
            images = _render(table, spec, cell, render_workers)
            _pretrain(table, spec, cell, images, device or spec.device, 1)
            if not spec.keep_images:
                shutil.rmtree(images, ignore_errors=True)
    return backbone_spec(table, spec, cell)


def _manifest(spec: RewardSpec, cell: Cell, images: Path, last: dict[str, Any], device: str,
              render_seconds: float, pretrain_seconds: float) -> dict[str, Any]:
    meta = json.loads((images / "dataset.json").read_text())
    return {"cell": cell.name, "setting": cell.setting, "seed": cell.seed, "pretrain_seed": spec.pretrain_seed(cell),
            "identity": spec.identity, "images": meta["n_images"], "classes": meta["n_classes"],
            "threads": spec.threads, "device": device, "final_epoch": last,
            "render_seconds": round(render_seconds, 1), "pretrain_seconds": round(pretrain_seconds, 1)}


def _replay_pretrain(folder: Path, value: dict[str, Any]) -> None:
    """Write a cell's ``cell.json`` and per-epoch metrics from its ledger record (no backbone is stored)."""
    metrics = folder / "pretrain" / "metrics.jsonl"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    write_text(metrics, "".join(canonical(e) + "\n" for e in value["epochs"]))
    write_json(folder / "cell.json", {**value["manifest"], "replayed": True})


def run_cell(table: str | Path, spec: RewardSpec, cell: Cell, *, device: str | None = None, render_workers: int = 1,
             gpus: int = 1, log=print) -> dict[str, Any]:
    """Bring one cell to completion (skipping what is done, replaying what the ledger holds); returns its manifest."""
    table = Path(table)
    device = device or spec.device
    folder = cell_dir(table, cell)
    folder.mkdir(parents=True, exist_ok=True)
    ledger = cell_ledger(spec)
    with output_lock(folder, f"reward cell {cell.name}"), torch_threads(spec.threads):
        manifest_path = folder / "cell.json"
        t0 = time.perf_counter()
        manifest = read_manifest(manifest_path)
        if manifest is not None and manifest.get("replayed") and not ledger_holds_cell(ledger, spec, cell):
            manifest = None  # replayed without a backbone, and an evaluation the ledger lacks: pre-train again
        if not cell.is_scratch and _to_run(manifest_path, manifest, log):
            found = ledger.lookup(PRETRAIN_KIND, cell_identity(spec, cell))
            if found is not None and ledger_holds_cell(ledger, spec, cell):
                _replay_pretrain(folder, found.value)
            else:
                ledger.require_measuring(PRETRAIN_KIND, f"cell {cell.name}")
                cpu0 = cpu_seconds()
                images = _render(table, spec, cell, render_workers)
                t_render = time.perf_counter() - t0
                last, epochs = _pretrain(table, spec, cell, images, device, gpus)
                manifest = _manifest(spec, cell, images, last, device, t_render, time.perf_counter() - t0 - t_render)
                write_json(manifest_path, manifest)
                ledger.append(PRETRAIN_KIND, cell_identity(spec, cell),
                              {"manifest": manifest, "final_epoch": last, "epochs": epochs,
                               "images": manifest["images"], "classes": manifest["classes"]},
                              provenance(cpu_seconds() - cpu0, time.perf_counter() - t0))
                log(f"[rewards] {cell.name}: rendered and pre-trained ({time.perf_counter() - t0:.0f} s)")
        if not spec.keep_images and (folder / "images").exists():
            shutil.rmtree(folder / "images")
        for task in spec.tasks:
            features: dict = {}
            for kind in evaluations(spec):
                path = eval_path(table, cell, task, kind)
                if not _to_run(path, read_result(path), log):
                    continue
                compute = {"knn": lambda: _knn(table, spec, cell, task, device, features if spec.validation else None),
                           "knn_val": lambda: _knn_val(table, spec, cell, task, device, features.get(task)),
                           "linear": lambda: _linear(table, spec, cell, task, device)}[kind]
                write_json(path, ledger.measure(EVAL_KINDS[kind], eval_identity(spec, cell, task, kind), compute,
                                                what=f"cell {cell.name}, task {task}", budget=False))
        manifest = read_manifest(manifest_path) or {"cell": cell.name}
    return manifest
