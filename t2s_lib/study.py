"""Run the numbered notebooks headless through papermill, in order.

Layout of one study run (profile ``P``)::

    runs/P/notebooks/NN_name.ipynb   executed copy of each notebook (with outputs)
    runs/P/<stage>/...               each stage's cached results (see the stage's module)
    <figures_dir>/                   figures and tables (``figures/`` for cpu/paper)

The run stops at the first failing notebook and names it and the failing cell. With a time budget
(``budget_minutes``) a notebook whose next unit would not finish in time stops cleanly (every finished
unit is in the results ledger); :class:`StudyStopped` says where, and the same command continues.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from .errors import T2SError
from .ledger import BudgetSpent, budget
from .paths import NOTEBOOKS_DIR
from .profiles import load_profile


class StudyStopped(T2SError):
    """The study's time budget was spent; ``records`` holds the notebooks that finished before."""

    def __init__(self, problem: str, fix: str, records: list[dict]):
        super().__init__(problem, fix)
        self.records = records


#: notebooks that run before a lower-numbered one because it reads their output: "Task2Sim" in notebooks 06
#: and 07 can be notebook 09's controller (policy.task2sim: paper-256)
RUNS_BEFORE = {"09_table256": "06_cka"}


def study_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` in the order they run: by number, except that each notebook
    of :data:`RUNS_BEFORE` runs just before the one it feeds."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise T2SError(f"no numbered notebooks found in {notebooks_dir}", "run from a complete checkout of the project")
    for early, late in RUNS_BEFORE.items():
        stems = [p.stem for p in found]
        if early in stems and late in stems:
            moved = found.pop(stems.index(early))
            found.insert([p.stem for p in found].index(late), moved)
    return found


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """Keep the notebooks whose number or name matches one of ``only`` (e.g. ``03`` or ``03_rewards``)."""
    if not only:
        return list(notebooks)
    chosen = [nb for nb in notebooks if any(nb.stem == o or nb.stem.startswith(f"{o}_") or nb.stem.split("_")[0] == o for o in only)]
    if not chosen:
        raise T2SError(f"no notebook matches {list(only)}", f"choose from: {', '.join(nb.stem for nb in notebooks)}")
    return chosen


def run_study(profile: str = "cpu", only: Sequence[str] | None = None, kernel_name: str | None = None,
              overrides: dict | None = None, budget_minutes: float | None = None) -> list[dict]:
    """Execute the notebooks with papermill; return one record per notebook (name, seconds).

    With ``overrides`` (dotted profile keys) the resolved profile is written to
    ``<run_dir>/profile.yaml`` and the notebooks run with that file. With ``budget_minutes`` no unit
    starts that would not finish in time, and :class:`StudyStopped` is raised where the budget ran out.
    """
    with budget(budget_minutes):
        return _run_notebooks(profile, only, kernel_name, overrides)


def _run_notebooks(profile: str, only: Sequence[str] | None, kernel_name: str | None,
                   overrides: dict | None) -> list[dict]:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .profiles import save_profile

    prof = load_profile(profile, overrides)
    out_dir = prof.layout.notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    if overrides:
        profile = str(save_profile(prof, prof.run_dir / "profile.yaml"))
    records = []
    for nb in select_notebooks(study_notebooks(), only):
        target = out_dir / nb.name
        print(f"[t2s study] {nb.name} (profile {prof.name}) -> {target}", flush=True)
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters={"profile": profile},
                kernel_name=kernel_name or "python3",
                cwd=str(nb.parent),
                progress_bar=False,
                log_output=False,
            )
        except PapermillExecutionError as exc:
            if exc.ename == BudgetSpent.__name__:
                raise StudyStopped(f"stopped in {nb.name} on the time budget: {exc.evalue.splitlines()[0]}",
                                   "every finished unit is in the results ledger; run the same command again to "
                                   "continue (commit the ledger first if this sitting ends)", records) from exc
            raise T2SError(
                f"notebook {nb.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                f"{exc.ename}: {exc.evalue}",
                f"open the executed copy {target} to see the failing cell and its traceback",
            ) from exc
        seconds = time.perf_counter() - start
        records.append({"notebook": nb.name, "seconds": round(seconds, 1)})
        print(f"[t2s study] {nb.name} done in {seconds:.1f} s", flush=True)
    return records
