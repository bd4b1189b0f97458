"""The rewards notebook's logic: build the profile's reward table, and hand its stored backbones to
the later stages (linear probe, fine-tuning, CKA, the policy on the live table)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import T2SError
from ..ledger import BudgetSpent
from ..paths import LIVE256_SUFFIX
from ..profiles import Profile
from .build import BuildResult, adopt_table, build_table
from .cells import cell_identity, ensure_backbone
from .spec import SCRATCH, Cell, RewardSpec, picks_spec, read_spec, spec_from_profile, table256_spec


def build_profile_table(prof: Profile, *, log: Callable[[str], None] = print) -> tuple[RewardSpec, BuildResult]:
    """Build (or finish, or reuse) the table the profile asks for, under ``runs/<profile>/rewards``."""
    return _build(prof, prof.layout.rewards, spec_from_profile(prof), "reward cell(s)", "rerun the notebook", log)


def build_table256_cells(prof: Profile, *, log: Callable[[str], None] = print) -> tuple[RewardSpec, BuildResult]:
    """Build (or finish, or reuse) the profile's 256-setting table (``table256``) under
    ``runs/<profile>/rewards256``: the cells notebook 03 completed are adopted (same experiment:
    their backbones hard-linked, their 5-NN results copied), the others are built."""
    return _build(prof, prof.layout.rewards256, table256_spec(prof), "cell(s) of the 256-setting table",
                  "rerun (t2s rewards build --profile P --table256)", log, adopt_from=prof.layout.rewards)


def build_pick_cells(prof: Profile, picks: list[str], *, log: Callable[[str], None] = print) -> tuple[RewardSpec, BuildResult]:
    """Pre-train each of ``picks`` (setting keys the methods of notebook 09 chose) on the profile's
    fresh ``table256.pick_seeds`` with the table's recipe, in ``runs/<profile>/rewards256_picks``."""
    # exactly these picks: an earlier run's picks (another table, another model) are not built again
    return _build(prof, prof.layout.rewards256_picks, picks_spec(prof, picks), "picked-setting cell(s)",
                  "rerun notebook 09 (t2s study --profile P --only 09)", log, keep_earlier_cells=False)


def _build(prof: Profile, table: Path, spec: RewardSpec, what: str, rerun: str, log: Callable[[str], None],
           adopt_from: Path | None = None, keep_earlier_cells: bool = True) -> tuple[RewardSpec, BuildResult]:
    if adopt_from is not None:
        spec = adopt_table(table, spec, adopt_from, log=log)
    result = build_table(table, spec, executor=prof.rewards.executor,
                         max_parallel=prof.rewards.max_parallel, render_workers=prof.render.workers,
                         slurm=prof.rewards.slurm, log=log, keep_earlier_cells=keep_earlier_cells)
    if result.failed:
        raise T2SError(f"{len(result.failed)} {what} failed: {result.failed}",
                       f"fix the cause and {rerun}; completed cells are kept")
    if result.stop_reason is not None:  # the notebook stops here: its analysis needs the whole table
        raise BudgetSpent(f"{result.stop_reason.problem}; {len(result.stopped)} {what} left",
                          "every finished cell is in the ledger; run the same command again to continue")
    return read_spec(table), result


@dataclass(frozen=True)
class Backbone:
    """A backbone a later stage evaluates: what determines its weights (its reward cell's ledger
    identity), and how to get them (:meth:`load_spec`, which may pre-train a replayed cell again)."""

    name: str
    table: Path
    spec: RewardSpec
    cell: Cell

    @property
    def identity(self) -> dict:
        return cell_identity(self.spec, self.cell)

    def load_spec(self) -> str:
        """The checkpoint (or ``scratch:<arch>``) that :func:`t2s_lib.evaluate.run.evaluate_backbone` loads."""
        return ensure_backbone(self.table, self.spec, self.cell)


def comparison_cells(prof: Profile, table: str | Path | None = None, *, scratch: bool = False) -> dict[str, Backbone]:
    """The profile's comparison settings (``pretrain.settings``), first seed, as reward-table backbones (with
    ``scratch``: also the randomly initialised architecture, seed 0 or the table's first scratch seed)."""
    table = Path(table) if table is not None else prof.layout.rewards
    spec = read_spec(table)
    out = {}
    for key in prof.setting_keys():
        if key not in spec.seeds:
            raise T2SError(f"setting {key} (pretrain.settings) is not in the reward table {table}",
                           "add it to the rewards design (rewards.settings) or drop it from pretrain.settings")
        out[key] = Backbone(key, table, spec, Cell(key, spec.seeds[key][0]))
    if scratch:
        out["scratch"] = Backbone("scratch", table, spec, Cell(SCRATCH, min(spec.scratch_seeds, default=0)))
    return out


def comparison_backbones(prof: Profile, table: str | Path | None = None) -> dict[str, Path]:
    """``{setting_key: checkpoint}`` of the profile's comparison settings (``pretrain.settings``), first seed,
    from the reward table's stored backbones (pre-trained again where the cells came from the ledger)."""
    return {key: Path(bb.load_spec()) for key, bb in comparison_cells(prof, table).items()}


def chance_accuracy(spec: RewardSpec) -> float | None:
    """Chance level of the pre-training task (100 / classes), when the class count is fixed."""
    classes = spec.render.get("classes")
    return 100.0 / classes if classes else None


def task2sim_cells(prof: Profile, tasks: list[str]) -> dict[str, Backbone] | None:
    """``{task: Backbone}``: for each task the backbone of the setting the policy that stands for Task2Sim
    (``policy.task2sim``) picked for it, first seed: notebook 09's picks pre-trained on its fresh seeds
    (``<variant>-256``) or notebook 03's cells (a variant of notebook 05's small study). None when that
    policy has not run (the demo runs notebook 09 only with ``make table256``)."""
    from ..files import read_json

    variant = prof.policy.task2sim
    path = prof.layout.policy_summary(variant)
    if not path.is_file():
        return None
    predictions = read_json(path)["predictions"]["0"]
    table = prof.layout.rewards256_picks if variant.endswith(LIVE256_SUFFIX) else prof.layout.rewards
    spec = read_spec(table)
    out = {}
    for task in tasks:
        if task not in predictions:
            raise T2SError(f"the {variant} policy ({path}) has no pick for task {task!r}",
                           "use the policy's tasks (a task the 256-setting study drops has none)")
        key = predictions[task]
        if key not in spec.seeds:
            raise T2SError(f"the {variant} pick {key} for {task!r} is not a cell of {table}",
                           "rerun the notebook that measures the picks (09 for a -256 policy, 03 otherwise)")
        out[task] = Backbone(key, table, spec, Cell(key, spec.seeds[key][0]))
    return out


def name_task2sim_backbones(prof: Profile, cells: dict[str, Backbone] | None) -> str:
    """What notebook 06's "Task2Sim" backbones are, in words: the policy, its table, and the settings it
    picked with how many tasks each (e.g. one setting for 10 of 11 tasks is nearly a fixed setting)."""
    from collections import Counter

    variant = prof.policy.task2sim
    if cells is None:
        return (f"no 'Task2Sim' backbone: the {variant} policy has not run "
                f"({'make table256, notebook 09' if variant.endswith(LIVE256_SUFFIX) else 'notebook 05'})")
    where = ("the 256-setting table (notebook 09), backbones from its fresh pick seeds"
             if variant.endswith(LIVE256_SUFFIX) else "notebook 03's table")
    counts = Counter(bb.name for bb in cells.values())
    picks = ", ".join(f"{key} for {n} of {len(cells)} task(s)" for key, n in counts.most_common())
    return f"its 'Task2Sim' backbone is the {variant} policy's pick on {where}: {picks}"
