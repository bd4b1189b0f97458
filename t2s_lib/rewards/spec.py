"""What a reward table measures, as plain data: the settings and seeds (cells), the tasks, and the
recipe every cell shares (image set, pre-training, 5-NN options).

A :class:`RewardSpec` is resolved from a profile (sections ``rewards``, ``pretrain``, ``render``,
``evaluate``) and command-line overrides, and written to ``<table>/spec.json``. Its *identity*
(image set, renderer, pre-training recipe, 5-NN options) must match for cells to be reused; the
settings, seeds and tasks may grow between runs (new cells and tasks are added, finished ones kept).

Seeds: a cell ``(setting, seed)`` renders and pre-trains with seed ``seed``: common random numbers.
Cells of one seed share the scene draws that a setting leaves fixed, the initial weights and the
data order, so settings are compared at equal seeds (paired) and a difference between two
settings is not mixed with a difference of initialisation; replicates (other seeds) measure the
seed noise. On the cpu proxy this halved the noise of setting differences (docs/PROXY_PROTOCOL.md:
setting x seed residual SD 0.59 against a pooled seed SD 0.79 of the task mean).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import T2SError
from ..files import write_json
from ..profiles import Profile
from ..settings import resolve_setting
from .design import design_settings

SPEC_VERSION = 2  # 2: common random numbers (pre-training seed = cell seed)
SCRATCH = "scratch"  # the randomly initialised backbone: a cell without rendering or pre-training


@dataclass(frozen=True)
class Cell:
    """One unit of work: a setting (or ``scratch``) and a seed."""

    setting: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.setting}/s{self.seed}"

    @property
    def is_scratch(self) -> bool:
        return self.setting == SCRATCH


@dataclass(frozen=True)
class RewardSpec:
    settings: list[str]  # published keys, design order (anchors first)
    seeds: dict[str, list[int]]  # setting key -> seeds (replicates)
    tasks: list[str]
    design: dict[str, Any]  # how the settings were chosen (name, generators, resolution)
    render: dict[str, Any]  # RenderJob fields except setting/seed (images, img_size, classes, library, ...)
    recipe: dict[str, Any]  # PretrainConfig fields except data/out/seed/device/progress
    knn: dict[str, Any]  # EvalOptions fields of the 5-NN
    scratch_seeds: list[int] = field(default_factory=list)
    validation: bool = False  # also 5-NN on a validation split of each task's training data
    linear: dict[str, Any] | None = None  # EvalOptions of a linear probe per task (None: 5-NN only)
    keep_images: bool = False
    device: str = "auto"
    threads: int | None = None  # torch CPU threads per cell (None: torch's default); recorded per cell
    profile: str = ""

    @property
    def identity(self) -> str:
        payload = {"v": SPEC_VERSION, "render": self.render, "recipe": self.recipe, "knn": self.knn}
        if self.linear is not None:  # (absent otherwise, so 5-NN-only tables keep their identity)
            payload["linear"] = self.linear
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def cells(self) -> list[Cell]:
        cells = [Cell(key, s) for key in self.settings for s in self.seeds[key]]
        return cells + [Cell(SCRATCH, s) for s in self.scratch_seeds]

    def pretrain_seed(self, cell: Cell) -> int:
        return cell.seed

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identity": self.identity, "version": SPEC_VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RewardSpec":
        data = {k: v for k, v in data.items() if k not in ("identity", "version")}
        return cls(**data)


def spec_from_profile(prof: Profile, *, design: str | None = None, settings: Sequence[str] | None = None,
                      tasks: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                      replicate_settings: Sequence[str] | None = None,
                      replicate_seeds: Sequence[int] | None = None, anchors: bool = True) -> RewardSpec:
    """Resolve the reward table a profile asks for (arguments override its ``rewards`` section)."""
    sec = prof.rewards
    design = design or sec.design
    keys = design_settings(design, settings=list(settings if settings is not None else sec.settings),
                           vary=sec.vary, fixed=sec.fixed, anchors=anchors)
    base_seeds = list(seeds if seeds is not None else sec.seeds)
    rep_seeds = list(replicate_seeds if replicate_seeds is not None else sec.replicates.seeds)
    rep_keys = [resolve_setting(s).key for s in (replicate_settings if replicate_settings is not None
                                                 else sec.replicates.settings)]
    missing = [k for k in rep_keys if k not in keys]
    if missing:
        raise T2SError(f"replicated setting(s) {missing} are not in the design", "replicate settings of the design only")
    seed_map = {k: sorted(set(base_seeds + (rep_seeds if k in rep_keys else []))) for k in keys}
    task_list = list(tasks if tasks is not None else (sec.tasks if sec.tasks is not None else prof.evaluate.tasks))
    if not task_list:
        raise T2SError("a reward table needs at least one task", "set rewards.tasks or evaluate.tasks, or pass --tasks")
    spec_img = prof.pretrain.render
    render = {"images": spec_img.images, "img_size": spec_img.img_size, "classes": spec_img.classes,
              "class_rule": spec_img.class_rule, "library": prof.render.library,
              **({"models_per_class": spec_img.models_per_class} if spec_img.models_per_class else {}), "msaa": prof.render.msaa, "tonemap": prof.render.tonemap,
              "image_format": prof.render.image_format}
    recipe = {k: v for k, v in prof.pretrain.recipe.items() if k not in ("seed",)}
    knn_opts = prof.evaluate.options("knn")
    knn = {k: getattr(knn_opts, k) for k in ("img_size", "k", "temperature", "train_mode", "max_train", "max_test",
                                             "feature_batch")}
    from .design import GENERATORS, resolution

    info: dict[str, Any] = {"name": design}
    if design in GENERATORS:
        info.update(generators=GENERATORS[design], resolution=resolution(GENERATORS[design]))
    scratch = sorted(set(base_seeds + (rep_seeds if rep_keys else []))) if sec.scratch else []
    return RewardSpec(settings=keys, seeds=seed_map, tasks=task_list, design=info, render=render, recipe=recipe,
                      knn=knn, scratch_seeds=scratch, validation=sec.validation, keep_images=sec.keep_images,
                      device=prof.device, threads=sec.threads, profile=prof.name)


def table256_parts(prof: Profile) -> dict[str, list[str]]:
    """The settings of the profile's 256-setting table by role: ``fraction`` (the measured fraction,
    anchors included: what the model is fitted on) and ``heldout`` (measured settings outside it
    that validate the model's predictions)."""
    sec = prof.table256
    fraction = design_settings(sec.design)
    heldout = design_settings(sec.heldout_design, anchors=False) if sec.heldout_design else []
    heldout += [resolve_setting(s).key for s in sec.heldout_settings]
    return {"fraction": fraction, "heldout": [k for k in dict.fromkeys(heldout) if k not in fraction]}


def table256_spec(prof: Profile) -> RewardSpec:
    """The demo's reward table (:func:`spec_from_profile`) grown by the ``table256`` section: its
    fraction, replicate seeds and held-out settings, with the same recipe (built in ``rewards256``),
    so every cell the demo built is reused."""
    from .design import GENERATORS, resolution

    base = spec_from_profile(prof)
    sec = prof.table256
    parts = table256_parts(prof)
    replicated = {resolve_setting(s).key for s in sec.replicates.settings}
    keys = list(dict.fromkeys(base.settings + parts["fraction"] + parts["heldout"]))
    seeds = {k: sorted(set(base.seeds.get(k, [])) | set(sec.seeds) | (set(sec.replicates.seeds) if k in replicated else set()))
             for k in keys}
    info: dict[str, Any] = {"name": "table256", "fraction": sec.design, **parts}
    if sec.design in GENERATORS:
        info.update(generators=GENERATORS[sec.design], resolution=resolution(GENERATORS[sec.design]))
    return dataclasses.replace(base, settings=keys, seeds=seeds, design=info)


def picks_spec(prof: Profile, picks: Sequence[str]) -> RewardSpec:
    """The 256-setting table's recipe over the settings the methods picked (``picks``), each on the
    fresh ``table256.pick_seeds`` only (no scratch cells): what the methods are scored on."""
    keys = list(dict.fromkeys(resolve_setting(k).key for k in picks))
    if not keys:
        raise T2SError("no picked settings to measure", "run the methods of notebook 09 first")
    seeds = sorted(prof.table256.pick_seeds)
    return dataclasses.replace(table256_spec(prof), settings=keys, seeds={k: seeds for k in keys}, scratch_seeds=[],
                               design={"name": "table256 picks", "pick_seeds": seeds})


def check_tasks(spec: RewardSpec) -> None:
    """Every task must be loadable before any work starts (a missing dataset names the fix)."""
    from ..tasks import get_task

    for name in spec.tasks:
        try:
            get_task(name).labels("train")
        except T2SError as exc:
            raise T2SError(f"reward table task {name!r}: {exc.problem}", exc.fix) from None


def write_spec(out: Path, spec: RewardSpec, *, keep_earlier_cells: bool = True) -> RewardSpec:
    """Record the spec; refuse a folder built with another recipe (cells would not be comparable).
    With ``keep_earlier_cells`` the cells an earlier, larger spec asked for stay in the record (and are
    built); without, the record is exactly ``spec`` (their folders stay on disk, unlisted)."""
    path = out / "spec.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:  # damaged: rewritten below, after the cells' own records are checked
            old = {}
        if not isinstance(old, dict) or not old.get("identity"):
            identity = _cells_identity(out)
            old = {"identity": identity} if identity else {}
        if old.get("identity") and old["identity"] != spec.identity:
            changed = [k for k in ("render", "recipe", "knn") if k in old and old[k] != spec.as_dict()[k]]
            raise T2SError(f"{out} holds a reward table built with another {'/'.join(changed) or 'recipe'}",
                           "choose another --out, or delete the folder to rebuild it")
        # keep cells a previous, larger spec asked for in the record (they stay in the folder)
        for key, seeds in (old.get("seeds") or {}).items() if keep_earlier_cells else ():
            if key not in spec.seeds:
                spec.settings.append(key)
                spec.seeds[key] = list(seeds)
            else:
                spec.seeds[key] = sorted(set(spec.seeds[key]) | set(seeds))
        for t in old.get("tasks") or []:
            if t not in spec.tasks:
                spec.tasks.append(t)
        spec.scratch_seeds[:] = sorted(set(spec.scratch_seeds) | set(old.get("scratch_seeds") or []))
        if old.get("validation") and not spec.validation:
            spec = dataclasses.replace(spec, validation=True)
    write_json(path, spec.as_dict())
    return spec


def _cells_identity(out: Path) -> str | None:
    """The spec identity the finished cells of a table folder record (their ``cell.json``), if any:
    what a damaged ``spec.json`` is checked against."""
    for manifest in sorted(out.glob("cells/*/s*/cell.json")):
        try:
            identity = json.loads(manifest.read_text()).get("identity")
        except (ValueError, AttributeError):
            continue
        if identity:
            return str(identity)
    return None


def read_spec(out: Path) -> RewardSpec:
    path = out / "spec.json"
    if not path.is_file():
        raise T2SError(f"{out} is not a reward table folder (no spec.json)", "build one with `t2s rewards build --out DIR`")
    fix = ("rerun the `t2s rewards build` that made this table (same profile and options): it rewrites the record "
           "and keeps every finished cell")
    try:
        data = json.loads(path.read_text())
        return RewardSpec.from_dict(data)
    except ValueError as exc:
        raise T2SError(f"{path} is damaged (not valid JSON: {exc})", fix) from None
    except (TypeError, AttributeError) as exc:
        raise T2SError(f"{path} is damaged (not a reward-table record: {exc})", fix) from None
