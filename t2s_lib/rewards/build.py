"""Build a reward table: run every pending cell (in this process, as local subprocesses, or as a Slurm
job array, all through submitit), then assemble the table from the cells' results.

Output folder layout::

    spec.json            the resolved spec (settings, seeds, tasks, recipe) and its identity hash
    cells/<key>/s<seed>/ one folder per cell (see :mod:`t2s_lib.rewards.cells`)
    reward_table.json    {task: {setting_key: 5-NN %}}, seed-averaged: the published reward_db schema,
                         read unchanged by the policy code
    rewards.csv          tidy: setting, seed, backbone, task, metric, value (one row per measurement,
                         scratch and every seed included) + per-cell pre-training rows
    failed.json          the cells that failed in the last build, with their errors (absent if none;
                         never a cell whose result is complete)
    slurm/               submitit's job files (Slurm executor)

Executors (no home-made scheduler): ``inline`` (this process, sequentially), ``debug``
(submitit's in-process executor, for tests), ``local`` (submitit's local executor: one
subprocess per cell, at most ``max_parallel`` at once), ``slurm`` (a submitit job array with a
concurrency cap; a pre-empted or timed-out job is requeued and resumes from the cell's checkpoint;
several GPUs per job run torchrun inside the job).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import T2SError
from ..files import atomic_path, write_json
from ..ledger import BudgetSpent, Ledger, check_budget, unit_estimate
from ..procs import output_lock
from .cells import (EVAL_KINDS, PRETRAIN_KIND, cell_dir, cell_done, cell_ledger, evaluations, knn_path, knn_val_path,
                    ledger_holds_cell, linear_path, read_manifest, read_record, read_result, run_cell)
from .spec import Cell, RewardSpec, read_spec

EXECUTORS = ("inline", "debug", "local", "slurm")
#: what holds a table folder's lock: one build or adoption at a time (a second build would run the
#: cells the first is running, fail on their locks and report them as failed)
TABLE_LOCK = "a reward table being built"


class CellJob:
    """A picklable cell job (what submitit runs); ``checkpoint`` makes a pre-empted job requeue itself."""

    def __init__(self, table: str, cell: Cell, render_workers: int = 1, gpus: int = 1):
        self.table, self.cell, self.render_workers, self.gpus = table, cell, render_workers, gpus

    def __call__(self) -> dict[str, Any]:
        spec = read_spec(Path(self.table))
        return run_cell(self.table, spec, self.cell, render_workers=self.render_workers, gpus=self.gpus)

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        # the cell resumes from what it finished (render chunks, pre-training checkpoint, 5-NN files)
        return submitit.helpers.DelayedSubmission(CellJob(self.table, self.cell, self.render_workers, self.gpus))


@dataclass
class BuildResult:
    table: Path
    done: list[str]
    failed: dict[str, str]
    skipped: list[str]
    seconds: float
    replayed: list[str] = field(default_factory=list)  # cells written from the ledger's records
    stopped: list[str] = field(default_factory=list)  # cells not started: the time budget was spent
    stop_reason: BudgetSpent | None = None


def cell_estimate(ledger: Ledger, spec: RewardSpec) -> float:
    """Wall seconds one cell of ``spec`` is expected to take, from the ledger's records of earlier cells."""
    return unit_estimate(PRETRAIN_KIND, ledger) + len(spec.tasks) * sum(
        unit_estimate(EVAL_KINDS[e], ledger) for e in evaluations(spec))


def _budget_gate(ledger: Ledger, spec: RewardSpec) -> Callable[[], None]:
    """Raises :class:`BudgetSpent` when the time left would not finish one more cell."""
    estimate = cell_estimate(ledger, spec)
    return lambda: check_budget("reward cell", estimate_s=estimate)


def slurm_executor(table: Path, slurm: Any, n_jobs: int, *, cluster: str | None = "slurm"):
    """A submitit executor for cell jobs: one task per job, a job array capped at ``array_parallelism``."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(table / "slurm" / "%j"), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": slurm.timeout_min, "nodes": 1, "tasks_per_node": 1,
                              "cpus_per_task": slurm.cpus_per_task, "gpus_per_node": slurm.gpus_per_node,
                              "name": "t2s-rewards", "slurm_array_parallelism": min(n_jobs, slurm.array_parallelism)}
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if slurm.mem_gb:
        params["mem_gb"] = slurm.mem_gb
    executor.update_parameters(**params)
    return executor


#: submitit jobs this process started that may still run: cancelled when the build is interrupted
#: (Ctrl-C, SIGTERM through :func:`t2s_lib.procs.sigterm_as_interrupt`) or the process exits (a notebook's
#: kernel shut down by an interrupted ``t2s study``)
_LIVE_JOBS: list[Any] = []


def _cancel_live_jobs(wait_s: float = 30.0) -> None:
    """Cancel every job of :data:`_LIVE_JOBS` and wait (up to ``wait_s``) for their processes to end, so
    their cells' locks are released when this returns (a later build runs those cells again from what
    they finished)."""
    handles = list(_LIVE_JOBS)
    _LIVE_JOBS.clear()
    for handle in handles:
        process = getattr(handle, "_process", None)  # the local executor's job controller
        try:
            if process is not None:
                # SIGTERM: the controller forwards it to the cell's process and exits quietly (its
                # cancel() sends SIGINT, which ends it with a KeyboardInterrupt traceback on our stderr)
                process.terminate()
            else:
                handle.cancel(check=False)
        except Exception:  # noqa: BLE001 (a job that already ended, a scheduler that refuses: nothing left to stop)
            pass
    deadline = time.monotonic() + wait_s
    for handle in handles:
        process = getattr(handle, "_process", None)
        if process is not None:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 (still running after wait_s: its lock goes with it when it ends)
                pass


atexit.register(_cancel_live_jobs)


@contextlib.contextmanager
def _cancelled_on_interrupt() -> Iterator[None]:
    """Cancel the jobs started inside the block if it is left by an exception (Ctrl-C, SIGTERM, a bug)."""
    try:
        yield
    except BaseException:
        _cancel_live_jobs()
        raise


def _submitted(executor, job: CellJob):
    handle = executor.submit(job)
    _LIVE_JOBS.append(handle)
    return handle


def _slurm_refusal(exc: Exception) -> T2SError:
    """sbatch refused the array: say which ``rewards.slurm`` key the cluster's message points at."""
    text = str(exc)
    keys = [key for key, words in (("partition", ("partition",)), ("gpus_per_node", ("gres", "gpu")),
                                   ("cpus_per_task", ("cpu",)), ("mem_gb", ("memory", "mem")),
                                   ("timeout_min", ("time limit",))) if any(w in text.lower() for w in words)]
    named = ", ".join(f"rewards.slurm.{k}" for k in keys) or "rewards.slurm"
    lines = [line for line in text.splitlines() if "error" in line.lower()] or text.splitlines()[-1:]
    return T2SError(f"the Slurm cluster refused the cells' job array ({(lines[-1] if lines else text).strip()[:300]})",
                    f"fix {named} in the profile (sinfo lists the partitions and their resources)")


def _run_submitit(jobs: list[CellJob], executor, refused=None) -> dict[str, str]:
    """Submit every job (as one array where the executor supports it) and wait; returns failures.
    ``refused`` turns a submission the scheduler rejects into a clear error."""
    failures: dict[str, str] = {}
    with _cancelled_on_interrupt():
        try:
            with executor.batch():
                handles = [_submitted(executor, job) for job in jobs]
        except Exception as exc:  # submitit raises sbatch's failure as a plain exception
            if refused is None:
                raise
            raise refused(exc) from None
        for job, handle in zip(jobs, handles):
            try:
                handle.result()
            except Exception as exc:  # submitit wraps the job's exception (its text keeps our message)
                failures[job.cell.name] = _short(exc)
            _forget(handle)
    return failures


def _forget(handle) -> None:
    if handle in _LIVE_JOBS:
        _LIVE_JOBS.remove(handle)


def _run_capped(jobs: list[CellJob], executor, cap: int, log: Callable[[str], None], poll_s: float = 0.5,
                gate: Callable[[], None] = lambda: None) -> tuple[dict[str, str], BudgetSpent | None]:
    """Keep at most ``cap`` jobs running (a new one starts as soon as one ends: no waiting for the
    slowest of a wave); ``gate`` is asked before each start (the time budget: once it refuses, no job
    starts and the running ones finish). Returns failures and the budget stop, if any. submitit's local
    executor has no concurrency cap of its own."""
    with _cancelled_on_interrupt():
        return _capped(jobs, executor, cap, log, poll_s, gate)


def _capped(jobs, executor, cap, log, poll_s, gate) -> tuple[dict[str, str], BudgetSpent | None]:
    failures: dict[str, str] = {}
    queue, running = list(jobs), []
    stop: BudgetSpent | None = None
    while queue or running:
        while queue and len(running) < cap and stop is None:
            try:
                gate()
            except BudgetSpent as exc:
                stop = exc
                log(f"[rewards] {exc.problem}; waiting for the {len(running)} running cell(s)")
                break
            job = queue.pop(0)
            running.append((job, _submitted(executor, job)))
        finished = [(j, h) for j, h in running if h.done()]
        if not finished:
            time.sleep(poll_s)
            continue
        for job, handle in finished:
            running.remove((job, handle))
            _forget(handle)
            try:
                handle.result()
            except Exception as exc:  # submitit wraps the job's exception (its text keeps our message)
                failures[job.cell.name] = _short(exc)
                log(f"[rewards] {job.cell.name} FAILED: {failures[job.cell.name]}")
        if stop is not None and not running:
            break
    return failures, stop


def _short(exc: BaseException) -> str:
    if isinstance(exc, T2SError):
        return exc.problem
    text = str(exc).strip().splitlines()
    errors = [line for line in text if "T2SError" in line or "Error" in line]
    return (errors[-1] if errors else (text[-1] if text else type(exc).__name__))[:500]


def build_table(table: str | Path, spec: RewardSpec, *, executor: str = "inline", max_parallel: int = 1,
                render_workers: int = 1, slurm: Any = None, log: Callable[[str], None] = print,
                keep_earlier_cells: bool = True) -> BuildResult:
    """Run the pending cells of ``spec`` in ``table`` and assemble the table (also after failures);
    ``keep_earlier_cells=False``: only ``spec``'s cells, not those an earlier spec of the folder asked for."""
    from .spec import check_tasks, write_spec

    if executor not in EXECUTORS:
        raise T2SError(f"unknown executor {executor!r}", f"use one of: {', '.join(EXECUTORS)}")
    table = Path(table)
    check_tasks(spec)
    table.mkdir(parents=True, exist_ok=True)
    # one builder per table folder: a second one is refused before it writes anything (spec.json,
    # failed.json); its cells are locked one by one as they run
    with output_lock(table, TABLE_LOCK):
        spec = write_spec(table, spec, keep_earlier_cells=keep_earlier_cells)
        t0 = time.perf_counter()
        cells = spec.cells()
        pending = [c for c in cells if not cell_done(table, spec, c)]
        skipped = [c.name for c in cells if c not in pending]
        # cells whose every record the ledger holds are written from it here (files only, no computation)
        ledger = cell_ledger(spec)
        replayed = [c for c in pending if ledger_holds_cell(ledger, spec, c)]
        for cell in replayed:
            run_cell(table, spec, cell, log=log)
        pending = [c for c in pending if c not in replayed]
        from_ledger = f"{len(replayed)} from the ledger {ledger.folder}, " if replayed else ""
        log(f"[rewards] {len(cells)} cells ({len(skipped)} complete, {from_ledger}{len(pending)} to run) x "
            f"{len(spec.tasks)} tasks -> {table} (executor {executor})")
        for cell in pending:  # in replay mode nothing is measured: name the first missing cell before any work
            ledger.require_measuring(PRETRAIN_KIND, f"cell {cell.name} of {table}")
        gate = _budget_gate(ledger, spec)
        failures: dict[str, str] = {}
        stop: BudgetSpent | None = None
        if executor == "inline":
            for cell in pending:
                try:
                    gate()
                except BudgetSpent as exc:
                    stop = exc
                    break
                try:
                    run_cell(table, spec, cell, render_workers=render_workers, log=log)
                except T2SError as exc:
                    failures[cell.name] = exc.problem
                    log(f"[rewards] {cell.name} FAILED: {exc.problem}")
        elif pending:
            import submitit

            per_job = slurm.processes_per_job if executor == "slurm" and slurm else 1
            jobs = [CellJob(str(table), c, render_workers, gpus=per_job) for c in pending]
            if executor == "slurm":
                if slurm is None:
                    raise T2SError("the slurm executor needs the profile's rewards.slurm resources", "use --profile")
                failures = _run_submitit(jobs, slurm_executor(table, slurm, len(jobs)), refused=_slurm_refusal)
            elif executor == "debug":
                failures = _run_submitit(jobs, submitit.AutoExecutor(folder=str(table / "submitit"), cluster="debug"))
            else:
                ex = submitit.AutoExecutor(folder=str(table / "submitit" / "%j"), cluster="local")
                ex.update_parameters(timeout_min=24 * 60)
                failures, stop = _run_capped(jobs, ex, max_parallel, log, gate=gate)
        # a cell that another process held (and finished) while this build ran is no failure
        failures = {name: problem for name, problem in failures.items()
                    if not cell_done(table, spec, next(c for c in cells if c.name == name))}
        assemble(table, spec)
        if failures:
            write_json(table / "failed.json", failures)
        elif (table / "failed.json").exists():
            (table / "failed.json").unlink()
        done = [c.name for c in cells if cell_done(table, spec, c)]
        stopped = [c.name for c in cells if c.name not in done and c.name not in failures] if stop else []
        if stop is not None:
            log(f"[rewards] {stop.problem}; {len(stopped)} cell(s) left for the next run")
        return BuildResult(table, done, failures, skipped, time.perf_counter() - t0, [c.name for c in replayed],
                           stopped, stop)


def adopt_cells(table: str | Path, spec: RewardSpec, source: str | Path, *,
                log: Callable[[str], None] = print) -> list[str]:
    """Reuse the pre-trained backbones (and 5-NN results) of another table whose cells are the same
    experiment: identical render job, recipe and pre-training seed, and for 5-NN results identical
    options. Pending cells of ``spec`` that ``source`` has completed get its ``cell.json`` and
    ``pretrain/`` (hard links where the file system allows, else copies) and its 5-NN files for the
    shared tasks; whatever else the cell needs (other tasks, linear probes) is then run as usual.
    Returns the names of the adopted cells. A source with a different experiment adopts nothing."""
    table, source = Path(table), Path(source)
    if not (source / "spec.json").is_file():
        return []
    src = read_spec(source)
    if src.render != spec.render or src.recipe != spec.recipe:
        return []
    same_knn = src.knn == spec.knn
    adopted = []
    for cell in spec.cells():
        if cell.is_scratch or cell_done(table, spec, cell) or read_manifest(cell_dir(table, cell) / "cell.json"):
            continue
        origin = cell_dir(source, cell)
        manifest = read_manifest(origin / "cell.json")  # a damaged source cell is not adopted
        if manifest is None or not (origin / "pretrain" / "checkpoint.pt").is_file():
            continue
        # the whole cell folder appears at once (cell.json with its backbone), replacing an
        # unfinished attempt of this cell (one without cell.json)
        with atomic_path(cell_dir(table, cell), is_dir=True) as staging:
            shutil.copytree(origin / "pretrain", staging / "pretrain", copy_function=_link_or_copy)
            if same_knn:
                for task in set(src.tasks) & set(spec.tasks):
                    for path_of in (knn_path,) + ((knn_val_path,) if src.validation and spec.validation else ()):
                        found = path_of(source, cell, task)
                        if read_result(found) is not None:
                            target = staging / found.relative_to(origin)
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(found, target)
            write_json(staging / "cell.json", {**manifest, "adopted_from": str(origin)})
        adopted.append(cell.name)
    if adopted:
        log(f"[rewards] adopted {len(adopted)} pre-trained cell(s) from {source}: {', '.join(adopted)}")
    return adopted


def adopt_scratch(table: str | Path, spec: RewardSpec, source: str | Path, *,
                  log: Callable[[str], None] = print) -> list[str]:
    """Reuse another table's results for the randomly initialised backbone: a ``scratch`` cell's
    numbers depend only on the architecture, the seed and the evaluation options, not on any image
    set, so every point of a scaling axis with the same backbone shares them. Copies the 5-NN and
    linear-probe files whose options match; returns the adopted cell names."""
    table, source = Path(table), Path(source)
    if not (source / "spec.json").is_file():
        return []
    src = read_spec(source)
    if src.recipe.get("arch") != spec.recipe.get("arch"):
        return []
    kinds = ([knn_path] if src.knn == spec.knn else []) + (
        [linear_path] if spec.linear is not None and src.linear == spec.linear else [])
    adopted = []
    for cell in spec.cells():
        if not cell.is_scratch or cell_done(table, spec, cell):
            continue
        copied = 0
        for path_of in kinds:
            for task in spec.tasks:
                found, target = path_of(source, cell, task), path_of(table, cell, task)
                if read_result(found) is not None and read_result(target) is None:
                    with atomic_path(target) as tmp:
                        shutil.copy2(found, tmp)
                    copied += 1
        if copied:
            adopted.append(cell.name)
    if adopted:
        log(f"[rewards] adopted scratch results from {source}: {', '.join(adopted)}")
    return adopted


def adopt_table(table: str | Path, spec: RewardSpec, source: str | Path, *,
                log: Callable[[str], None] = print) -> RewardSpec:
    """Record ``spec`` in ``table`` and adopt every cell (pre-trained and scratch) that ``source``
    completed for the same experiment; returns the recorded spec."""
    from .spec import write_spec

    table = Path(table)
    table.mkdir(parents=True, exist_ok=True)
    with output_lock(table, TABLE_LOCK):
        spec = write_spec(table, spec)
        adopt_cells(table, spec, source, log=log)
        adopt_scratch(table, spec, source, log=log)
    return spec


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def collect_rows(table: Path, spec: RewardSpec) -> list[dict[str, Any]]:
    """Every finished measurement of the table: 5-NN per (cell, task) and pre-training per cell."""
    rows = []
    for cell in spec.cells():
        backbone = cell.setting if not cell.is_scratch else f"scratch:{spec.recipe.get('arch', 'resnet50')}"
        for task in spec.tasks:
            for metric, path in (("knn_top1", knn_path(table, cell, task)), ("knn_val_top1", knn_val_path(table, cell, task)),
                                 ("linear_top1", linear_path(table, cell, task))):
                rec = read_result(path)  # a damaged file is no measurement (the next build recomputes it)
                if rec is not None:
                    rows.append({"setting": cell.setting, "seed": cell.seed, "backbone": backbone, "task": task,
                                 "metric": metric, "value": rec["value"]})
        manifest = read_manifest(cell_dir(table, cell) / "cell.json")
        if manifest is not None:
            last = manifest["final_epoch"]
            for metric in ("val_acc", "train_loss", "val_loss"):
                if metric in last and last[metric] is not None:
                    rows.append({"setting": cell.setting, "seed": cell.seed, "backbone": backbone, "task": "pretrain",
                                 "metric": f"pretrain_{metric}", "value": last[metric]})
    return rows


def seed_averaged(rows: list[dict[str, Any]], metric: str = "knn_top1") -> dict[str, dict[str, float]]:
    """``{task: {setting_key: mean over seeds}}`` (settings only; scratch is left out of the reward table)."""
    from .spec import SCRATCH

    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["metric"] == metric and r["setting"] != SCRATCH:
            acc.setdefault(r["task"], {}).setdefault(r["setting"], []).append(float(r["value"]))
    return {t: {k: round(sum(v) / len(v), 4) for k, v in by.items()} for t, by in acc.items()}


def assemble(table: Path, spec: RewardSpec) -> dict[str, dict[str, float]]:
    """Write ``reward_table.json`` (seed-averaged, published schema) and ``rewards.csv`` from the cells."""
    import pandas as pd

    rows = collect_rows(table, spec)
    rewards = seed_averaged(rows)
    write_json(table / "reward_table.json", rewards)
    columns = ["setting", "seed", "backbone", "task", "metric", "value"]
    with atomic_path(table / "rewards.csv") as tmp:
        pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False)
    return rewards


def table_status(table: str | Path) -> dict[str, Any]:
    """What is done in a table folder: per cell, the stage reached and the tasks evaluated."""
    table = Path(table)
    spec = read_spec(table)
    cells = []
    for cell in spec.cells():
        folder = cell_dir(table, cell)
        knn = [t for t in spec.tasks if read_result(knn_path(table, cell, t)) is not None]
        if cell.is_scratch:
            stage = "n/a"
        elif read_manifest(folder / "cell.json") is not None:
            stage = "pre-trained"
        elif (folder / "pretrain" / "checkpoint.pt").is_file():
            stage = "pre-training"
        elif (folder / "images" / "dataset.json").is_file():
            stage = "rendered"
        elif (folder / ".images.partial").exists():
            stage = "rendering"
        else:
            stage = "pending"
        cells.append({"cell": cell.name, "stage": stage, "knn_tasks": len(knn), "tasks": len(spec.tasks),
                      "done": cell_done(table, spec, cell)})
    # failures of the last build, less the cells finished since (by another build, or adopted)
    pending = {c["cell"] for c in cells if not c["done"]}
    failed = {k: v for k, v in (read_record(table / "failed.json") or {}).items() if k in pending}
    return {"table": str(table), "identity": spec.identity, "cells": cells, "done": sum(c["done"] for c in cells),
            "total": len(cells), "failed": failed}
