"""Study profiles: one YAML per scale (``smoke``, ``cpu``, ``paper``), loaded into a typed :class:`Profile`.

A profile has top-level keys (``name``, ``device``, ``seed``, ``figures_dir``, ``run_dir``) and one
section per stage; each section is a frozen dataclass below, built once by :func:`load_profile`
through the strict loader of :mod:`t2s_lib.schema`: unknown keys, wrong types and impossible
values (bounds, choices, unknown tasks/settings/architectures, more classes than the object
library has when it is fetched) are refused with an error naming the file, section and key.
Image sizes are called ``img_size`` in every section.

Relative paths are resolved against the project root; ``figures_dir: null`` means
``<run_dir>/figures`` (so a redirected ``T2S_RUNS`` moves them too). Users can pass a path to
their own YAML instead of a name; ``overrides`` (dotted keys) patch the YAML before validation.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import T2SError
from .paths import PROFILES_DIR, PROJECT_ROOT, StudyLayout, profile_run_dir
from .schema import bounds, build, check_fields, choices, to_plain

PROFILE_NAMES = ("smoke", "cpu", "paper")
IMG_SIZE = bounds(8, 1024)
POSITIVE = bounds(1)
NON_NEGATIVE = bounds(0)


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure8Spec:
    img_size: int = field(default=128, metadata=IMG_SIZE)
    n: int = field(default=5, metadata=bounds(1, 20))


@dataclass(frozen=True)
class GridSpec:
    settings: list[str] = field(default_factory=lambda: ["all_off", "domain_randomization"])
    images: int = field(default=16, metadata=bounds(1, 400))
    img_size: int = field(default=64, metadata=IMG_SIZE)


@dataclass(frozen=True)
class ThroughputSpec:
    img_sizes: list[int] = field(default_factory=lambda: [64], metadata=IMG_SIZE)
    images: int = field(default=200, metadata=POSITIVE)
    workers: list[int] = field(default_factory=lambda: [1], metadata=bounds(1, 256))


@dataclass(frozen=True)
class RenderSection:
    """Renderer defaults (``t2s render``, notebook 01); the sizes of the pre-training sets are in
    ``pretrain.render``."""

    library: str = "sweethome3d"
    msaa: int = field(default=4, metadata=choices(0, 2, 4, 8))
    tonemap: str = field(default="aces", metadata=choices("aces", "reinhard", "none"))
    image_format: str = field(default="jpg", metadata=choices("jpg", "png"))
    workers: int = field(default=1, metadata=bounds(1, 256))
    figure8: Figure8Spec = field(default_factory=Figure8Spec)
    grid: GridSpec = field(default_factory=GridSpec)
    throughput: ThroughputSpec = field(default_factory=ThroughputSpec)

    def validate(self, where: str) -> None:
        _check_settings(self.grid.settings, f"{where}.grid.settings")


@dataclass(frozen=True)
class TasksSection:
    """The downstream tasks: the policy trains on ``seen`` and is judged on ``unseen``."""

    seen: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)
    data_root: str | None = None  # root of the paper datasets (null: T2S_DATA_ROOT)

    def validate(self, where: str) -> None:
        _check_tasks(self.seen, f"{where}.seen")
        _check_tasks(self.unseen, f"{where}.unseen")
        both = sorted(set(self.seen) & set(self.unseen))
        if both:
            raise T2SError(f"{where}: task(s) {both} are both seen and unseen", "list each task in one of the two")

    @property
    def all(self) -> list[str]:
        return list(self.seen) + list(self.unseen)


@dataclass(frozen=True)
class Task2VecSection:
    probe: str = field(default="resnet18", metadata=choices("resnet18", "resnet34", "resnet50"))
    probe_checkpoint: str | None = None  # null = fixed-seed random-init probe (named in every embedding's metadata)
    # train the probe on a rendered set (t2s_lib.task2vec.trained_probe.ProbeRecipe fields; cached per machine);
    # used when probe_checkpoint is null
    probe_recipe: dict[str, Any] | None = None
    img_size: int = field(default=224, metadata=bounds(16, 1024))
    max_samples: int | None = field(default=10000, metadata=POSITIVE)
    fisher_samples: int = field(default=10000, metadata=bounds(2))
    fisher_batch_size: int = field(default=64, metadata=bounds(2))
    classifier_epochs: int = field(default=10, metadata=POSITIVE)
    classifier_samples: int = field(default=10000, metadata=POSITIVE)
    seed: int = field(default=0, metadata=NON_NEGATIVE)
    threads: int | None = field(default=None, metadata=POSITIVE)
    fractions: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.2, 0.1], metadata=bounds(0, 1, lo_open=True))
    fraction_tasks: list[str] = field(default_factory=list)

    def validate(self, where: str) -> None:
        _check_tasks(self.fraction_tasks, f"{where}.fraction_tasks")
        if self.probe_recipe is not None:
            from .schema import check_keys
            from .task2vec.trained_probe import ProbeRecipe

            check_keys(self.probe_recipe, [f.name for f in dataclasses.fields(ProbeRecipe)], f"{where}.probe_recipe")
            recipe = ProbeRecipe(**self.probe_recipe)
            _check_settings([recipe.setting], f"{where}.probe_recipe.setting")
            from .train.config import PretrainConfig

            check_fields(PretrainConfig(**recipe.train), f"{where}.probe_recipe.train", recipe.train.keys())

    def options(self, **overrides: Any):
        """The :class:`~t2s_lib.task2vec.embed.Task2VecOptions` of this section (``None`` overrides ignored)."""
        from .task2vec.embed import Task2VecOptions

        values = {k: getattr(self, k) for k in ("probe", "probe_checkpoint", "img_size", "max_samples", "fisher_samples",
                                                 "fisher_batch_size", "classifier_epochs", "classifier_samples", "seed")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Task2VecOptions(**values).check()


@dataclass(frozen=True)
class PolicySection:
    variants: list[str] = field(default_factory=lambda: ["paper", "per-task", "reward-kernel"])
    seeds: list[int] = field(default_factory=lambda: [0], metadata=NON_NEGATIVE)
    loo_seeds: list[int] = field(default_factory=lambda: [0], metadata=NON_NEGATIVE)
    epochs: int = field(default=1000, metadata=POSITIVE)
    workers: int = field(default=1, metadata=bounds(1, 256))
    # measured selection: re-run its design search (leave-one-task-out over the seen tasks; minutes)
    measured_design: bool = False
    measured_optimism_repeats: int = field(default=10, metadata=POSITIVE)
    # the policy that stands for "Task2Sim" in notebooks 06 and 07: a variant of notebook 05's small study on
    # the live table (e.g. reward-kernel), or "<variant>-256", notebook 09's on the 256-setting table (paper-256)
    task2sim: str = "reward-kernel"

    def validate(self, where: str) -> None:
        from .policy.methods import METHODS

        for i, v in enumerate(self.variants):
            if v not in METHODS:
                raise T2SError(f"{where}.variants[{i}]: unknown policy variant {v!r}", f"use one of: {', '.join(METHODS.names())}")


@dataclass(frozen=True)
class ImageSetSpec:
    """Size of each rendered pre-training set."""

    images: int = field(default=100, metadata=POSITIVE)
    classes: int | None = field(default=None, metadata=POSITIVE)  # null: every class of the library
    models_per_class: int | None = field(default=None, metadata=POSITIVE)  # null: every model of a class
    # which N classes: alphabetical, most_models (ties by name) or tdw (the paper's TDW categories first)
    class_rule: str = field(default="alphabetical", metadata=choices("alphabetical", "most_models", "tdw"))
    img_size: int = field(default=64, metadata=IMG_SIZE)


#: PretrainConfig fields a profile's ``pretrain.recipe`` may not set (they come from the study).
RECIPE_EXCLUDED = ("data", "out", "device", "progress", "stop_after", "extra")


@dataclass(frozen=True)
class PretrainSection:
    settings: list[str] = field(default_factory=list)
    render: ImageSetSpec = field(default_factory=ImageSetSpec)
    recipe: dict[str, Any] = field(default_factory=dict)  # PretrainConfig fields (validated against it)

    def validate(self, where: str) -> None:
        from .schema import check_keys
        from .train.config import PretrainConfig
        from .train.models import MODELS

        _check_settings(self.settings, f"{where}.settings")
        allowed = [f.name for f in dataclasses.fields(PretrainConfig) if f.name not in RECIPE_EXCLUDED]
        check_keys(self.recipe, allowed, f"{where}.recipe")
        # typed and bounded exactly like a PretrainConfig built from command-line flags
        cfg = PretrainConfig(**self.recipe)
        check_fields(cfg, f"{where}.recipe", self.recipe.keys())
        cfg.check_combination(f"{where}.recipe")
        arch = self.recipe.get("arch", PretrainConfig.arch)
        if arch not in MODELS:
            raise T2SError(f"{where}.recipe.arch: unknown architecture {arch!r}", f"use one of: {', '.join(MODELS.names())}")

    def config(self, **fields: Any):
        """A :class:`~t2s_lib.train.config.PretrainConfig`: paper defaults < this recipe < ``fields``."""
        from .train.config import PretrainConfig

        return PretrainConfig(**{**self.recipe, **fields})


@dataclass(frozen=True)
class ProtocolSpec:
    """Per-protocol overrides of the evaluate section (``linear:``, ``finetune:``)."""

    tasks: list[str] | None = None  # null: the evaluate section's tasks
    epochs: int | None = field(default=None, metadata=POSITIVE)
    hparams: str | None = field(default=None, metadata=choices("paper", "grid", "given"))
    lr: float | None = field(default=None, metadata=bounds(0, lo_open=True))
    batch_size: int | None = field(default=None, metadata=POSITIVE)
    weight_decay: float | None = field(default=None, metadata=NON_NEGATIVE)
    cache_features: bool | None = None
    max_train: int | None = field(default=None, metadata=POSITIVE)
    max_test: int | None = field(default=None, metadata=POSITIVE)

    def validate(self, where: str) -> None:
        _check_tasks(self.tasks or [], f"{where}.tasks")


@dataclass(frozen=True)
class EvaluateSection:
    tasks: list[str] = field(default_factory=list)
    img_size: int = field(default=224, metadata=IMG_SIZE)
    max_train: int | None = field(default=None, metadata=POSITIVE)
    max_test: int | None = field(default=None, metadata=POSITIVE)
    workers: int = field(default=0, metadata=bounds(0, 256))
    feature_batch: int = field(default=128, metadata=POSITIVE)
    k: int = field(default=5, metadata=POSITIVE)
    temperature: float = field(default=0.07, metadata=bounds(0, lo_open=True))
    train_mode: bool = False
    knn: ProtocolSpec = field(default_factory=ProtocolSpec)
    linear: ProtocolSpec = field(default_factory=lambda: ProtocolSpec(tasks=[]))
    finetune: ProtocolSpec = field(default_factory=lambda: ProtocolSpec(tasks=[]))

    def validate(self, where: str) -> None:
        _check_tasks(self.tasks, f"{where}.tasks")

    def protocol(self, name: str) -> ProtocolSpec:
        if name not in ("knn", "linear", "finetune"):
            raise T2SError(f"unknown protocol {name!r}", "use knn, linear or finetune")
        return getattr(self, name)

    def protocol_tasks(self, name: str) -> list[str]:
        spec = self.protocol(name)
        return list(self.tasks if spec.tasks is None else spec.tasks)

    def options(self, protocol: str, *, device: str = "auto", seed: int = 0, **override: Any):
        """:class:`~t2s_lib.evaluate.run.EvalOptions`: defaults < this section < its protocol block < ``override``."""
        from .evaluate.run import EvalOptions

        values: dict[str, Any] = {"img_size": self.img_size, "max_train": self.max_train, "max_test": self.max_test,
                                  "workers": self.workers, "feature_batch": self.feature_batch, "k": self.k,
                                  "temperature": self.temperature, "train_mode": self.train_mode,
                                  "device": device, "seed": seed}
        spec = self.protocol(protocol)
        values.update({f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
                       if f.name != "tasks" and getattr(spec, f.name) is not None})
        values.update(protocol=protocol, **override)
        return EvalOptions(**values)


@dataclass(frozen=True)
class CkaSection:
    tasks: list[str] = field(default_factory=list)
    img_size: int = field(default=224, metadata=IMG_SIZE)
    max_images: int | None = field(default=None, metadata=POSITIVE)
    batch_size: int = field(default=256, metadata=bounds(4))
    epochs: int = field(default=1, metadata=POSITIVE)
    kernel: str = field(default="linear", metadata=choices("linear", "rbf"))
    reduce: str = field(default="pool", metadata=choices("pool", "flatten"))

    def validate(self, where: str) -> None:
        _check_tasks(self.tasks, f"{where}.tasks")


@dataclass(frozen=True)
class ReplicateSpec:
    """Extra seeds (render + initialisation) for some settings: every table carries its own noise estimate."""

    settings: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list, metadata=NON_NEGATIVE)

    def validate(self, where: str) -> None:
        _check_settings(self.settings, f"{where}.settings")


@dataclass(frozen=True)
class SlurmSpec:
    """Resources of one reward-table cell on a Slurm cluster (submitit job arrays)."""

    partition: str | None = None
    gpus_per_node: int = field(default=1, metadata=bounds(0, 16))
    # pre-training processes per cell job (torchrun inside the job when > 1): null, one per GPU; on a CPU
    # cluster (gpus_per_node 0) e.g. 2 runs DDP over gloo
    processes: int | None = field(default=None, metadata=bounds(1, 16))
    cpus_per_task: int = field(default=10, metadata=bounds(1, 256))
    mem_gb: int | None = field(default=None, metadata=POSITIVE)
    timeout_min: int = field(default=24 * 60, metadata=POSITIVE)
    array_parallelism: int = field(default=32, metadata=POSITIVE)  # at most this many cells at once

    @property
    def processes_per_job(self) -> int:
        return self.processes if self.processes is not None else max(1, self.gpus_per_node)


@dataclass(frozen=True)
class RewardsSection:
    """The reward-table builder (``t2s rewards build``): which settings, seeds and tasks, and where it runs.
    Images, pre-training and 5-NN options come from the ``pretrain``, ``render`` and ``evaluate`` sections."""

    design: str = field(default="explicit", metadata=choices("explicit", "subgrid", "full", "ff16", "ff32", "resv64"))
    settings: list[str] = field(default_factory=list)  # design: explicit
    vary: list[str] = field(default_factory=list)  # design: subgrid
    fixed: dict[str, bool] = field(default_factory=dict)  # design: subgrid
    seeds: list[int] = field(default_factory=lambda: [0], metadata=NON_NEGATIVE)
    replicates: ReplicateSpec = field(default_factory=ReplicateSpec)
    scratch: bool = True  # also measure the randomly initialised backbone (per seed)
    tasks: list[str] | None = None  # null: evaluate.tasks
    # also a 5-NN on a validation split of each task's training data (what measured selection observes)
    validation: bool = False
    keep_images: bool = False  # keep each cell's rendered images after pre-training
    executor: str = field(default="inline", metadata=choices("inline", "local", "slurm"))
    max_parallel: int = field(default=1, metadata=bounds(1, 256))  # local executor: cells at once
    # torch CPU threads per cell (null: torch's default). On 2 cores, 2 cells of 1 thread each beat
    # one cell of 2 threads by 2.3x; 1 and 2 threads give different (equally valid) weights.
    threads: int | None = field(default=None, metadata=bounds(1, 1024))
    slurm: SlurmSpec = field(default_factory=SlurmSpec)

    def validate(self, where: str) -> None:
        from .settings import PARAMETERS

        _check_settings(self.settings, f"{where}.settings")
        for name in (*self.vary, *self.fixed):
            if name not in PARAMETERS:
                raise T2SError(f"{where}: unknown parameter {name!r} in vary/fixed", f"use some of: {', '.join(PARAMETERS)}")
        _check_tasks(self.tasks or [], f"{where}.tasks")


@dataclass(frozen=True)
class ScalingAxes:
    """Values of each scaling axis (an empty list: the axis is not studied)."""

    classes: list[int] = field(default_factory=list, metadata=POSITIVE)
    models_per_class: list[int] = field(default_factory=list, metadata=POSITIVE)
    images: list[int] = field(default_factory=list, metadata=POSITIVE)
    arch: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScalingSection:
    """The supplementary scaling studies (notebook 07): each axis point is a reward table (same builder,
    cached cells) over the settings the compared methods choose, evaluated by 5-NN and linear probing."""

    axes: ScalingAxes = field(default_factory=ScalingAxes)
    methods: list[str] = field(default_factory=lambda: ["task2sim", "measured", "domain_randomization", "random", "scratch"],
                               metadata=choices("task2sim", "measured", "domain_randomization", "random", "scratch"))
    # measured selection's picks, named as policy.task2sim is (measured-k16-256: notebook 09's K = 16 picks)
    measured_policy: str = "measured"
    # where measured selection is pre-trained besides the base point (null: every point); one value per axis
    # gives it a two-point slope at a fraction of the cost
    measured_points: ScalingAxes | None = None
    random_draws: int = field(default=2, metadata=bounds(1, 16))  # uniformly random settings, shared by all tasks
    seeds: list[int] = field(default_factory=lambda: [0, 1], metadata=NON_NEGATIVE)
    tasks: list[str] | None = None  # null: the rewards tasks

    def validate(self, where: str) -> None:
        from .train.models import MODELS

        for i, a in enumerate(self.axes.arch):
            if a not in MODELS:
                raise T2SError(f"{where}.axes.arch[{i}]: unknown architecture {a!r}", f"use one of: {', '.join(MODELS.names())}")
        _check_tasks(self.tasks or [], f"{where}.tasks")
        if self.measured_points is not None:
            for axis in (f.name for f in dataclasses.fields(ScalingAxes)):
                extra = [v for v in getattr(self.measured_points, axis) if v not in getattr(self.axes, axis)]
                if extra:
                    raise T2SError(f"{where}.measured_points.{axis}: {extra} not among the axis values {getattr(self.axes, axis)}",
                                   f"pick measured selection's points from {where}.axes.{axis}")


@dataclass(frozen=True)
class Table256Section:
    """The 256-setting table (``make table256``, notebook 09): a fraction of the 256 settings measured
    by the same cells as the ``rewards`` table (in ``runs/<profile>/rewards256``, adopting the demo's cells), a
    model of main effects (+ two-factor interactions when the fraction has resolution V) fitted on it
    predicting the rest, validated on measured settings outside the fraction (``heldout_*``)."""

    design: str = field(default="resv64", metadata=choices("ff16", "ff32", "resv64", "full"))
    seeds: list[int] = field(default_factory=lambda: [0], metadata=NON_NEGATIVE)
    replicates: ReplicateSpec = field(default_factory=ReplicateSpec)  # extra seeds of settings of the fraction
    heldout_design: str | None = field(default=None, metadata=choices("ff16", "ff32"))  # its settings outside the fraction
    heldout_settings: list[str] = field(default_factory=list)  # more measured settings outside the fraction
    policy_seeds: list[int] = field(default_factory=lambda: list(range(10)), metadata=NON_NEGATIVE)
    loo_seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata=NON_NEGATIVE)  # controllers' leave-one-out
    # the seeds every picked setting is pre-trained on to score the methods (fresh: no table cell uses them)
    pick_seeds: list[int] = field(default_factory=lambda: [100, 101, 102], metadata=NON_NEGATIVE)
    # tasks left out of the table's analysis and the methods (e.g. a task at the 5-NN ceiling, which cannot
    # rank settings); notebook 09 prints the measured share of their entries at 100 %
    drop_tasks: list[str] = field(default_factory=list)
    measured_budgets: list[int] = field(default_factory=lambda: list(range(1, 33)), metadata=POSITIVE)

    def validate(self, where: str) -> None:
        from .rewards.design import design_settings

        _check_settings(self.heldout_settings, f"{where}.heldout_settings")
        _check_tasks(self.drop_tasks, f"{where}.drop_tasks")
        self.replicates.validate(f"{where}.replicates")
        fraction = set(design_settings(self.design))
        outside = [s for s in self.replicates.settings if _key(s) not in fraction]
        if outside:
            raise T2SError(f"{where}.replicates.settings: {outside} are not settings of design {self.design!r}",
                           "replicate settings of the fraction only (the held-out settings validate it)")
        inside = [s for s in self.heldout_settings if _key(s) in fraction]
        if inside:
            raise T2SError(f"{where}.heldout_settings: {inside} are settings of the fraction {self.design!r}, "
                           "so they cannot validate its predictions", "list settings outside the fraction")
        if not self.pick_seeds:
            raise T2SError(f"{where}.pick_seeds is empty: the methods' picks could not be scored on measurements",
                           "give fresh seeds, e.g. [100, 101, 102]")
        reused = sorted(set(self.pick_seeds) & (set(self.seeds) | set(self.replicates.seeds)))
        if reused:
            raise T2SError(f"{where}.pick_seeds {reused} are seeds of the table itself: a pick would be scored on the "
                           "measurement it was chosen on", "use seeds no table cell uses, e.g. [100, 101, 102]")
        if self.design == "full" and (self.heldout_design or self.heldout_settings):
            raise T2SError(f"{where}: design 'full' measures every setting, nothing is left to hold out",
                           "drop heldout_design / heldout_settings, or measure a fraction (resv64)")


def _key(setting: str) -> str:
    from .settings import resolve_setting

    return resolve_setting(setting).key


SECTIONS: dict[str, type] = {
    "render": RenderSection, "tasks": TasksSection, "task2vec": Task2VecSection, "policy": PolicySection,
    "pretrain": PretrainSection, "evaluate": EvaluateSection, "cka": CkaSection, "rewards": RewardsSection,
    "scaling": ScalingSection, "table256": Table256Section,
}


@dataclass(frozen=True)
class Profile:
    """A validated study profile: top-level settings, one typed section per stage, and its layout."""

    name: str
    profile_file: Path
    run_dir: Path
    figures_dir: Path
    device: str = "auto"
    seed: int = 0
    render: RenderSection = field(default_factory=RenderSection)
    tasks: TasksSection = field(default_factory=TasksSection)
    task2vec: Task2VecSection = field(default_factory=Task2VecSection)
    policy: PolicySection = field(default_factory=PolicySection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    cka: CkaSection = field(default_factory=CkaSection)
    rewards: RewardsSection = field(default_factory=RewardsSection)
    scaling: ScalingSection = field(default_factory=ScalingSection)
    table256: Table256Section = field(default_factory=Table256Section)
    notebook: str = ""  # set by t2s_lib.notebook.setup: recorded in figure provenance

    @property
    def layout(self) -> StudyLayout:
        return StudyLayout(self.run_dir, self.figures_dir)

    def setting_keys(self) -> list[str]:
        """``pretrain.settings`` as published key strings (presets and indices resolved)."""
        from .settings import resolve_setting

        return [resolve_setting(s).key for s in self.pretrain.settings]

    def with_run_dir(self, run_dir: str | Path) -> "Profile":
        """The same profile writing its stage outputs (and, if they followed it, figures) elsewhere."""
        run_dir = Path(run_dir).expanduser().resolve()
        figures = run_dir / "figures" if self.figures_dir == self.run_dir / "figures" else self.figures_dir
        return dataclasses.replace(self, run_dir=run_dir, figures_dir=figures)

    def as_dict(self) -> dict[str, Any]:
        return to_plain(self)


# ----------------------------------------------------------------------------------------------
# cross-checks shared by sections
# ----------------------------------------------------------------------------------------------
def _check_settings(values: list[str], where: str) -> None:
    from .settings import resolve_setting

    for i, value in enumerate(values):
        try:
            resolve_setting(value)
        except T2SError as exc:
            raise T2SError(f"{where}[{i}]: {exc.problem}", exc.fix) from None


def _check_tasks(names: list[str], where: str) -> None:
    """Registered task names, or paths (checked when used: a folder may live on another machine)."""
    from .tasks import list_tasks

    known = set(list_tasks())
    lower = {n.lower() for n in known}
    for i, name in enumerate(names):
        if name in known or name.lower() in lower or "/" in name or name.startswith((".", "~")):
            continue
        raise T2SError(f"{where}[{i}]: unknown task {name!r}",
                       f"use a registered task ({', '.join(sorted(known))}) or a path to an ImageFolder")


def _check_comparison_settings(prof: Profile, where: str) -> None:
    """The comparison settings' backbones come from the reward table: they must be in its design."""
    from .rewards.design import design_settings

    r = prof.rewards
    keys = set(design_settings(r.design, settings=r.settings, vary=r.vary, fixed=r.fixed))
    missing = [k for k in prof.setting_keys() if k not in keys]
    if missing:
        raise T2SError(f"{where}: pretrain.settings {missing} are not in the reward table's design ({r.design})",
                       "compare settings of the design (its backbones are reused), or add them to rewards.settings "
                       "with design: explicit")
    for i, key in enumerate(r.replicates.settings):
        from .settings import resolve_setting

        if resolve_setting(key).key not in keys:
            raise T2SError(f"{where}: rewards.replicates.settings[{i}] ({key}) is not in the design ({r.design})",
                           "replicate settings of the design only")


def _check_library_classes(prof: Profile, where: str) -> None:
    """More classes than the object library has: refused when the library is fetched (else checked at use)."""
    wanted = prof.pretrain.render.classes
    if wanted is None or not prof.pretrain.settings:
        return
    from .assets.library import library_class_count

    have = library_class_count(prof.render.library)
    if have is not None and wanted > have:
        raise T2SError(f"{where}: pretrain.render.classes asks for {wanted} classes but library "
                       f"{prof.render.library!r} has {have}",
                       f"use classes <= {have}, or a library with more classes (render.library)")


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def profile_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text in PROFILE_NAMES or (PROFILES_DIR / f"{text}.yaml").is_file():
        return PROFILES_DIR / f"{text}.yaml"
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise T2SError(f"unknown profile {text!r}", f"use one of: {', '.join(PROFILE_NAMES)} or a path to a profile YAML file")


def _abs(p: str | Path) -> Path:
    p = Path(p).expanduser()
    return (p if p.is_absolute() else PROJECT_ROOT / p).resolve()


def _set_dotted(data: dict, dotted: str, value: Any, where: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise T2SError(f"{where}: {key!r} is not a section", "override a key inside a section")
    node[keys[-1]] = value


def _set_text(dotted: str, value: Any) -> str:
    """``--set KEY=VALUE`` as the user wrote it (the value back in YAML flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return f"--set {dotted}={text.removesuffix('...').strip()}"


def _override_error(exc: T2SError, data: dict, overrides: Mapping[str, Any], path: Path) -> T2SError:
    """``exc`` (raised with ``overrides`` applied) blamed on the ``--set`` that caused it, not the file.

    The file alone and then the overrides one by one are validated again: the first override
    that makes it fail is named. An error the file has on its own stays the file's."""
    try:
        profile_from_dict(data, path)
    except T2SError:
        return exc
    patched = copy.deepcopy(data)
    for dotted, value in overrides.items():
        _set_dotted(patched, dotted, value, str(path))
        try:
            profile_from_dict(patched, path)
        except T2SError as culprit:
            problem = culprit.problem.removeprefix(f"{path}: ")
            return type(culprit)(f"{_set_text(dotted, value)}: {problem} (over profile {path})", culprit.fix)
    return exc


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["device=cuda", "tasks.unseen=[digits]"]`` -> ``{"device": "cuda", "tasks.unseen": ["digits"]}`` (YAML values)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise T2SError(f"--set {item!r} is not KEY=VALUE", "write e.g. --set device=cuda or --set pretrain.recipe.epochs=2")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise T2SError(f"--set {item!r}: the value is not valid YAML ({exc})", "quote it or fix the syntax") from None
    return out


def save_profile(prof: Profile, path: str | Path) -> Path:
    """Write a resolved profile as YAML (every section, absolute folders): loadable with :func:`load_profile`."""
    from .files import write_text

    data = prof.as_dict()
    for key in ("profile_file", "notebook"):
        data.pop(key, None)
    return write_text(path, f"# resolved from {prof.profile_file}\n" + yaml.safe_dump(data, sort_keys=False))


def load_profile(name_or_path: str | Path | Profile = "smoke", overrides: Mapping[str, Any] | None = None) -> Profile:
    """Load and validate a profile (a name, a YAML path, or an already loaded :class:`Profile`)."""
    if isinstance(name_or_path, Profile):
        if overrides:
            return load_profile(name_or_path.profile_file, overrides)
        return name_or_path
    path = profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise T2SError(f"{path}: not valid YAML ({exc})", "fix the syntax of the profile file") from exc
    if not isinstance(data, dict):
        raise T2SError(f"{path}: a profile must be a mapping of sections", "see t2s_lib/profiles/cpu.yaml")
    patched = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        _set_dotted(patched, dotted, value, f"{_set_text(dotted, value)} (over profile {path})")
    try:
        return profile_from_dict(patched, path)
    except T2SError as exc:
        if not overrides:
            raise
        # the value came from --set, not from the file the error would otherwise name
        raise _override_error(exc, data, overrides, path) from None


def profile_from_dict(data: Mapping[str, Any], path: str | Path = "<profile>") -> Profile:
    """Validate a profile given as plain data (``path`` names it in errors)."""
    from .schema import check_keys

    data = dict(data)
    top = ("name", "device", "seed", "figures_dir", "run_dir")
    check_keys(data, [*top, *SECTIONS], str(path))
    name = data.get("name") or Path(str(path)).stem
    if not isinstance(name, str) or not name:
        raise T2SError(f"{path}: name must be a non-empty string", "e.g. name: cpu")
    device = data.get("device", "auto")
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise T2SError(f"{path}: device {device!r} is not allowed", "use auto, cpu, cuda or cuda:N")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise T2SError(f"{path}: seed must be a non-negative integer, got {seed!r}", "e.g. seed: 0")
    run_dir = _abs(data["run_dir"]) if data.get("run_dir") else profile_run_dir(name).resolve()
    figures_dir = _abs(data["figures_dir"]) if data.get("figures_dir") else run_dir / "figures"
    sections = {key: build(cls, data.get(key), f"{path}: {key}") for key, cls in SECTIONS.items()}
    prof = Profile(name=name, profile_file=Path(path), run_dir=run_dir, figures_dir=figures_dir, device=device,
                   seed=seed, **sections)
    _check_library_classes(prof, str(path))
    _check_comparison_settings(prof, str(path))
    return prof
