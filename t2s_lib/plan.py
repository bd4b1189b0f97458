"""``t2s study --plan``: check a profile, its data, assets and devices, and estimate what each stage costs,
without running anything.

The plan lists every missing input with where to get it (paper datasets, object libraries, HDRIs,
a GPU the profile asks for) and, per notebook, the work it will do (images rendered, training
image-epochs, forward passes, controller runs) with estimated hours on the CPU and on a GPU from
the throughput table ``t2s_lib/data/throughput.yaml`` (measured where BENCHMARKS.md has the
figure; assumed, and labelled so, where it has not).
"""

from __future__ import annotations

import ctypes.util
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from .errors import T2SError
from .paths import CURATED_DATA_DIR
from .profiles import Profile, load_profile
from .settings import PRESETS

#: Which notebook runs which stage (the study's order).
NOTEBOOK_STAGES = {"01_render": "render", "02_task2vec": "task2vec", "03_rewards": "rewards", "04_evaluate": "evaluate",
                   "05_policy": "policy", "06_cka": "cka", "07_scaling": "scaling", "09_table256": "table256"}


@lru_cache(maxsize=1)
def throughput_table() -> dict[str, Any]:
    return yaml.safe_load((CURATED_DATA_DIR / "throughput.yaml").read_text())


@dataclass
class StageCost:
    """Work of one stage in device-independent units, and its estimated seconds per device kind."""

    stage: str
    notebook: str
    actions: list[str] = field(default_factory=list)
    render_images: dict[int, int] = field(default_factory=dict)  # image side -> images
    train_gflop: float = 0.0
    forward_gflop: float = 0.0
    controller_epochs: int = 0
    #: units of this stage the results ledger already holds, of how many (None: not counted by the ledger)
    units_held: int | None = None
    units_total: int | None = None

    def seconds(self, device: str) -> float:
        dev = throughput_table()["devices"][device]
        s = sum(n * _render_ms(dev, size) / 1000 for size, n in self.render_images.items())
        s += self.train_gflop / dev["train_gflops_per_s"] + self.forward_gflop / dev["forward_gflops_per_s"]
        s += self.controller_epochs / 1000 * dev["controller_seconds_per_1000_epochs"]
        return s


def _render_ms(dev: dict[str, Any], size: int) -> float:
    table = {int(k): float(v) for k, v in dev["render_ms_per_image"].items()}
    ref = min(table, key=lambda k: abs(k - size))
    return table[ref] * (size / ref) ** 2  # cost grows with the pixel count


def _gflop(arch: str, img_size: int) -> float:
    """Forward GFLOPs of one image through ``arch`` at ``img_size`` px."""
    base = throughput_table()["forward_gflops_224"]
    return float(base.get(arch, base["resnet50"])) * (img_size / 224) ** 2


@dataclass
class StudyPlan:
    profile: Profile
    missing: list[dict[str, str]] = field(default_factory=list)  # {what, why, fix}
    found: list[str] = field(default_factory=list)
    devices: dict[str, Any] = field(default_factory=dict)
    stages: list[StageCost] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile.name, "ok": self.ok, "missing": self.missing, "found": self.found,
                "devices": self.devices,
                "stages": [{"notebook": s.notebook, "stage": s.stage, "actions": s.actions,
                            "render_images": sum(s.render_images.values()), "train_gflop": round(s.train_gflop, 1),
                            "forward_gflop": round(s.forward_gflop, 1), "controller_epochs": s.controller_epochs,
                            "cpu_hours": round(s.seconds("cpu") / 3600, 3), "gpu_hours": round(s.seconds("cuda") / 3600, 3)}
                           for s in self.stages],
                "throughput": {k: {kk: vv for kk, vv in v.items() if kk in ("description", "source", "date")}
                               for k, v in throughput_table()["devices"].items()}}


# ----------------------------------------------------------------------------------------------
# checks
def _task_sizes(prof: Profile, name: str, plan: StudyPlan) -> tuple[int, int, int]:
    """(train, test, classes) of a task: the fetched offline data, the published counts of a paper task
    (its folder checked under the data root), or a user's folder; records what is missing."""
    from .tasks import PAPER_SPECS, get_task
    from .tasks.fetch import BUILDERS, is_fetched

    if name in BUILDERS:
        if not is_fetched(name):
            plan.missing.append({"what": f"offline task {name}", "why": "not built in the cache",
                                 "fix": "t2s data fetch (or make data)"})
            return 1000, 500, 10
        task = get_task(name)
        return len(task.labels("train")), len(task.labels("test")), task.num_classes
    lower = {n.lower(): n for n in PAPER_SPECS}
    if name.lower() in lower:
        spec = PAPER_SPECS[lower[name.lower()]]
        from .tasks.paper import data_root

        try:
            root = data_root(prof.tasks.data_root)
        except T2SError:
            root = None
        folder = root / spec.folder if root is not None else None
        if folder is None or not folder.is_dir():
            where = f"{folder}" if folder is not None else "no data root (tasks.data_root / T2S_DATA_ROOT)"
            plan.missing.append({"what": f"paper dataset {spec.name}", "why": f"not found: {where}",
                                 "fix": f"get it from {spec.source}; place it as <data root>/{spec.folder}/ ({spec.layout})"})
        else:
            plan.found.append(f"paper dataset {spec.name} at {folder}")
        return spec.train, spec.test, spec.num_classes
    try:
        task = get_task(name)
        return len(task.labels("train")), len(task.labels("test")), task.num_classes
    except T2SError as exc:
        plan.missing.append({"what": f"task {name}", "why": exc.problem, "fix": exc.fix or ""})
        return 1000, 500, 10


def _check_assets(prof: Profile, plan: StudyPlan) -> None:
    from .assets.hdri import hdri_cache_ok, hdri_dir
    from .assets.library import library_class_count

    lib = prof.render.library
    have = library_class_count(lib)
    wanted = prof.pretrain.render.classes
    fix = "t2s assets fetch" + ("" if lib == "sweethome3d" else f" --library {lib}")
    if have is None:
        plan.missing.append({"what": f"object library {lib!r}", "why": "not fetched/indexed here", "fix": fix})
    elif wanted is not None and wanted > have:
        plan.missing.append({"what": f"object library {lib!r}", "why": f"has {have} classes, the profile asks for {wanted}",
                             "fix": "use a library with more classes (render.library) or fewer classes"})
    else:
        plan.found.append(f"object library {lib!r}: {have} classes")
    if not hdri_cache_ok(hdri_dir()):
        plan.missing.append({"what": "HDRIs", "why": "not converted in the cache", "fix": "t2s assets fetch"})
    else:
        plan.found.append("HDRIs converted")


def _check_devices(prof: Profile, plan: StudyPlan) -> None:
    try:
        import torch

        cuda = torch.cuda.is_available()
        plan.devices["cuda_devices"] = torch.cuda.device_count() if cuda else 0
        plan.devices["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        cuda = False
        plan.devices["cuda_devices"] = 0
    plan.devices["egl"] = bool(ctypes.util.find_library("EGL"))
    plan.devices["profile_device"] = prof.device
    if not plan.devices["egl"]:
        plan.missing.append({"what": "EGL (headless OpenGL)", "why": "libEGL not found",
                             "fix": "sudo apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1"})
    wants_gpu = prof.device.startswith("cuda") or prof.name == "paper"
    if wants_gpu and not cuda:
        plan.missing.append({"what": "a CUDA GPU", "why": f"profile {prof.name!r} is sized for GPU hosts; none here",
                             "fix": "run it on a GPU host (device: auto picks the GPU), or use --profile cpu here"})


# ----------------------------------------------------------------------------------------------
# stage costs
def _render_stage(prof: Profile) -> StageCost:
    r = prof.render
    cost = StageCost("render", "01_render")
    n8 = 8 * r.figure8.n
    ngrid = len(r.grid.settings) * r.grid.images
    cost.render_images = {r.figure8.img_size: n8}
    cost.render_images[r.grid.img_size] = cost.render_images.get(r.grid.img_size, 0) + ngrid
    for size in r.throughput.img_sizes:
        cost.render_images[size] = cost.render_images.get(size, 0) + r.throughput.images * len(r.throughput.workers)
    cost.actions = [f"Figure 8 analog: 8 parameters x {r.figure8.n} images at {r.figure8.img_size} px",
                    f"sample grid: {len(r.grid.settings)} settings x {r.grid.images} images at {r.grid.img_size} px",
                    f"throughput: {r.throughput.images} images x sizes {r.throughput.img_sizes} x workers {r.throughput.workers}"]
    return cost


def _task2vec_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    t = prof.task2vec
    cost = StageCost("task2vec", "02_task2vec")
    per = _gflop(t.probe, t.img_size)
    embeddings = [(name, 1.0) for name in prof.tasks.all]
    embeddings += [(name, f) for name in t.fraction_tasks for f in t.fractions if f < 1.0]
    embeddings += [(name, 1.0) for name in t.fraction_tasks]  # the seed+1 noise floor
    # the vectors the results ledger holds are not measured again
    from .task2vec.study import TASK2VEC_KIND, ProfileEmbedder

    embedder = ProfileEmbedder(prof)
    wanted = ([embedder.identity(n) for n in prof.tasks.all]
              + [embedder.identity(n, fraction=float(f)) for n in t.fraction_tasks for f in t.fractions if f < 1.0]
              + [embedder.identity(n, seed=t.seed + 1) for n in t.fraction_tasks])
    held = [embedder.ledger.holds(TASK2VEC_KIND, i) for i in wanted]
    embeddings = [e for e, h in zip(embeddings, held) if not h]
    for name, fraction in embeddings:
        train = sizes[name][0]
        feats = min(int(train * fraction), t.max_samples or train)
        cost.forward_gflop += feats * per
        cost.train_gflop += t.fisher_samples * per  # forward + backward per Fisher draw
    cost.actions = [f"{len(prof.tasks.all)} task embeddings ({t.probe} probe at {t.img_size} px, "
                    f"<= {t.max_samples} feature images, {t.fisher_samples} Fisher draws each)",
                    f"supplementary Table 1: fractions {t.fractions} of {t.fraction_tasks}",
                    f"results ledger {embedder.ledger.folder}: {sum(held)} of {len(held)} vectors held"]
    cost.units_held, cost.units_total = sum(held), len(held)
    return cost


def _policy_stage(prof: Profile) -> StageCost:
    from .policy.runner import CONTROLLER_VARIANTS

    p = prof.policy
    cost = StageCost("policy", "05_policy")
    controllers = [v for v in p.variants if v in CONTROLLER_VARIANTS]
    runs = len(controllers) * (len(p.seeds) + 20 * len(p.loo_seeds))  # in-sample seeds + 20 LOO folds per LOO seed
    cost.controller_epochs = runs * p.epochs // max(1, p.workers)
    cost.actions = [f"variants {p.variants} on the published 20 x 256 table; controller seeds {p.seeds}, "
                    f"leave-one-task-out seeds {p.loo_seeds}; {runs} controller runs of {p.epochs} epochs "
                    f"on {p.workers} worker(s)"]
    return cost


def _cells_cost(prof: Profile, spec, sizes: dict[str, tuple[int, int, int]], cells, stage: str, notebook: str) -> StageCost:
    """Render + pre-training + 5-NN work of the reward-table ``cells`` of ``spec`` that the results ledger
    does not hold yet (those are replayed, not measured)."""
    from .rewards.cells import cell_ledger, ledger_holds_cell

    ledger = cell_ledger(spec)
    total = len(cells)
    cells = [c for c in cells if not ledger_holds_cell(ledger, spec, c)]
    cost = _measured_cells_cost(prof, spec, sizes, cells, stage, notebook)
    cost.units_held, cost.units_total = total - len(cells), total
    cost.actions.append(f"results ledger {ledger.folder}: {total - len(cells)} of {total} cells held, "
                        f"{len(cells)} to measure")
    return cost


def _measured_cells_cost(prof: Profile, spec, sizes: dict[str, tuple[int, int, int]], cells, stage: str,
                         notebook: str) -> StageCost:
    spec_img, cfg = prof.pretrain.render, prof.pretrain.config()
    trained = [c for c in cells if not c.is_scratch]
    cost = StageCost(stage, notebook)
    cost.render_images = {spec_img.img_size: spec_img.images * len(trained)}
    images = min(spec_img.images, cfg.max_images or spec_img.images)
    cost.train_gflop = 3 * len(trained) * images * (1 - cfg.val_fraction) * cfg.epochs * _gflop(cfg.arch, cfg.img_size)
    knn = prof.evaluate.options("knn")
    for name in spec.tasks:
        train, test, _ = sizes[name]
        n = min(train, knn.max_train or train) + min(test, knn.max_test or test)
        cost.forward_gflop += len(cells) * n * _gflop(cfg.arch, knn.img_size)
    cost.actions = [f"each cell: render {spec_img.images} images ({spec_img.classes or 'all'} classes, library "
                    f"{prof.render.library!r}) at {spec_img.img_size} px, pre-train {cfg.arch} for {cfg.epochs} epochs, "
                    f"5-NN on {len(spec.tasks)} task(s) at {knn.img_size} px"]
    return cost


def _rewards_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    from .rewards.spec import spec_from_profile

    spec = spec_from_profile(prof)
    cells = spec.cells()
    cost = _cells_cost(prof, spec, sizes, cells, "rewards", "03_rewards")
    cost.actions.insert(0, f"design {spec.design['name']}: {len(spec.settings)} settings, {len(cells)} cells "
                           f"({sum(not c.is_scratch for c in cells)} pre-trained, seeds {sorted({c.seed for c in cells})})")
    return cost


def _table256_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    """The cells the 256-setting table adds to notebook 03's (``make table256``), and its controllers."""
    from .rewards.spec import spec_from_profile, table256_parts, table256_spec

    demo = set(spec_from_profile(prof).cells())
    spec = table256_spec(prof)
    extra = [c for c in spec.cells() if c not in demo]
    cost = _cells_cost(prof, spec, sizes, extra, "table256", "09_table256")
    parts = table256_parts(prof)
    sec = prof.table256
    n_tasks = len(prof.tasks.all)
    fractions = len({f for f in prof.task2vec.fractions if f < 1.0})
    fits = 2 * (len(sec.policy_seeds) + n_tasks * len(sec.loo_seeds)) + len(sec.policy_seeds) * fractions
    cost.controller_epochs = fits * prof.policy.epochs
    cost.actions.insert(0, f"fraction {sec.design} ({len(parts['fraction'])} settings) + {len(parts['heldout'])} held-out "
                           f"settings: {len(extra)} cells beyond notebook 03's {len(demo)}")
    cost.actions.append(f"{fits} controller fits ({prof.policy.epochs} epochs) on the 256-setting table")
    # the picks are known only once the methods have chosen; a pick costs a cell per pick seed
    cost.actions.append(f"then every distinct setting the methods pick x {len(sec.pick_seeds)} fresh pick seeds: one cell "
                        f"each, not counted above (runs/{prof.name}/rewards256_picks/spec.json lists them once chosen)")
    return cost


def _evaluate_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    e = prof.evaluate
    arch = prof.pretrain.config().arch
    backbones = len(prof.setting_keys()) + 1  # + the randomly initialised reference
    per = _gflop(arch, e.img_size)
    cost = StageCost("evaluate", "04_evaluate")
    held_total = units_total = 0
    for protocol in ("linear", "finetune"):
        opts = e.options(protocol)
        tasks = e.protocol_tasks(protocol)
        held = _evaluations_held(prof, protocol, tasks)
        held_total, units_total = held_total + sum(held.values()), units_total + backbones * len(tasks)
        for name in tasks:
            remaining = backbones - held.get(name, 0)  # results the ledger holds are not measured again
            if remaining == 0:
                continue
            train, test, _ = sizes[name]
            train, test = min(train, opts.max_train or train), min(test, opts.max_test or test)
            if protocol == "linear" and opts.cache_features:
                cost.forward_gflop += remaining * (train + test) * per
            elif protocol == "linear":
                cost.forward_gflop += remaining * (train * opts.epochs + test) * per
            else:
                cost.train_gflop += 3 * remaining * train * opts.epochs * per
                cost.forward_gflop += remaining * test * per
        if tasks:
            cost.actions.append(f"{protocol}: {backbones} backbones x {len(tasks)} task(s) at {e.img_size} px")
    cost.units_held, cost.units_total = held_total, units_total
    return cost


def _evaluations_held(prof: Profile, protocol: str, tasks: list[str]) -> dict[str, int]:
    """Per task, how many of the comparison backbones' ``protocol`` results the results ledger holds (none
    before notebook 03's table exists: the backbones' identities come from its spec)."""
    from .evaluate.study import EVAL_KIND, FineTuned, evaluation_identity, options_for
    from .ledger import active
    from .rewards.study import comparison_cells

    if not (prof.layout.rewards / "spec.json").is_file() or not tasks:
        return {}
    ledger = active(prof.name)
    held: dict[str, int] = {}
    for bb in comparison_cells(prof, scratch=True).values():
        for task in tasks:
            opts = FineTuned(prof, bb, task).options() if protocol == "finetune" else options_for(prof, protocol)
            held[task] = held.get(task, 0) + ledger.holds(EVAL_KIND, evaluation_identity(bb, task, opts))
    return held


def _cka_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    c = prof.cka
    arch = prof.pretrain.config().arch
    backbones = len(prof.setting_keys())
    cost = StageCost("cka", "06_cka")
    for name in c.tasks:
        n = min(sizes[name][1], c.max_images or sizes[name][1])
        cost.forward_gflop += backbones * n * c.epochs * _gflop(arch, c.img_size)
    ft = prof.evaluate.protocol_tasks("finetune")
    cost.actions = [f"{c.kernel} CKA of {backbones} backbones at stages 1-4 on {len(c.tasks)} task(s), "
                    f"<= {c.max_images} images each" + (f"; after fine-tuning on {ft}" if ft else "")]
    return cost


def _scaling_stage(prof: Profile, sizes: dict[str, tuple[int, int, int]]) -> StageCost:
    """Notebook 07 (``make study-full``): every non-base point's cells, plus the base point's cells
    that notebook 03's table does not already hold (the base adopts those)."""
    from . import scaling
    from .rewards.spec import SCRATCH, spec_from_profile

    sec = prof.scaling
    cost = StageCost("scaling", "07_scaling")
    pts = [(axis, value, name) for axis, value, name in scaling.points(prof) if name != "base"]
    if not pts:
        cost.actions = ["no scaling axes in this profile"]
        return cost

    try:  # which settings the policies pick is known once their summaries exist (notebooks 05 / 09)
        chosen: dict | None = scaling.method_settings(prof)
        counted = "distinct settings per point counted from the policies' predictions"
    except T2SError:
        chosen = None
        counted = ("settings per point assume one distinct setting per policy method until the policies have "
                   "run: each more one adds a pre-training per point and seed")

    def settings_at(axis, value) -> tuple[list[str], int]:
        """(the settings known at a point, how many it has): counted from the policies' predictions, or
        before they ran one per policy method (of the settings only domain randomisation is known)"""
        here = scaling.methods_at(prof, axis, value)
        if chosen is not None:
            known = sorted({k for m, per_task in chosen.items() if m in here
                            for keys in per_task.values() for k in keys if k != SCRATCH})
            return known, len(known)
        policies = [m for m in here if m in ("task2sim", "measured")]
        n = len(policies) + ("domain_randomization" in here) + (sec.random_draws if "random" in here else 0)
        return ([PRESETS["domain_randomization"].key] if "domain_randomization" in here else []), n

    per_point = {name: settings_at(axis, value) for axis, value, name in [(None, None, "base")] + pts}
    counted += ": " + ", ".join(f"{name} {n}" for name, (_, n) in per_point.items())
    tasks = scaling.scaling_tasks(prof)
    lin, knn = prof.evaluate.options("linear"), prof.evaluate.options("knn")
    in_table = {(c.setting, c.seed) for c in spec_from_profile(prof).cells()}
    for axis, value, name in [(None, None, "base")] + pts:
        p = prof if axis is None else scaling.point_profile(prof, axis, value)
        render, cfg = p.pretrain.render, p.pretrain.config()
        known, n_settings = per_point[name]
        cells = n_settings * len(sec.seeds)
        if axis is None:  # the base adopts notebook 03's cells
            cells -= sum(1 for k in known for s in sec.seeds if (k, s) in in_table)
        cost.render_images[render.img_size] = cost.render_images.get(render.img_size, 0) + cells * render.images
        cost.train_gflop += 3 * cells * render.images * (1 - cfg.val_fraction) * cfg.epochs * _gflop(cfg.arch, cfg.img_size)
        scratch = len(sec.seeds) if "scratch" in sec.methods else 0
        for task in tasks:
            train, test, _ = sizes[task]
            n = min(train, knn.max_train or train) + min(test, knn.max_test or test)
            n += min(train, lin.max_train or train) + min(test, lin.max_test or test)  # linear probe features
            cost.forward_gflop += (cells + scratch) * n * _gflop(cfg.arch, knn.img_size)
    axes = {a: getattr(sec.axes, a) for a in scaling.AXES if getattr(sec.axes, a)}
    cost.actions = [f"{len(pts)} points besides the base ({', '.join(f'{a}: {v}' for a, v in axes.items())}), seeds {list(sec.seeds)}",
                    counted,
                    f"5-NN and linear probe on {len(tasks)} task(s); the base point reuses notebook 03's cells"]
    return cost


def plan_study(profile: str | Profile) -> StudyPlan:
    """Validate the profile (errors raise) and collect what is missing and what each stage costs."""
    prof = load_profile(profile)
    plan = StudyPlan(prof)
    from .rewards.spec import spec_from_profile

    names = dict.fromkeys(prof.tasks.all + prof.evaluate.tasks + prof.cka.tasks + prof.task2vec.fraction_tasks
                          + [t for p in ("linear", "finetune") for t in prof.evaluate.protocol_tasks(p)]
                          + spec_from_profile(prof).tasks + list(prof.scaling.tasks or []))
    sizes = {name: _task_sizes(prof, name, plan) for name in names}
    _check_assets(prof, plan)
    _check_devices(prof, plan)
    plan.stages = [_render_stage(prof), _task2vec_stage(prof, sizes), _rewards_stage(prof, sizes),
                   _evaluate_stage(prof, sizes), _policy_stage(prof), _cka_stage(prof, sizes),
                   _scaling_stage(prof, sizes), _table256_stage(prof, sizes)]
    return plan


def format_plan(plan: StudyPlan) -> str:
    """A readable plan: checks, then one block per notebook, then the totals."""
    tp = throughput_table()["devices"]
    lines = [f"Plan for profile {plan.profile.name!r} ({plan.profile.profile_file})",
             f"  stage outputs: {plan.profile.run_dir}", f"  figures:       {plan.profile.figures_dir}",
             f"  devices: {json.dumps(plan.devices)}", ""]
    for item in plan.found:
        lines.append(f"  ok       {item}")
    for item in plan.missing:
        lines.append(f"  MISSING  {item['what']}: {item['why']}\n           fix: {item['fix']}")
    lines.append("")
    lines.append(f"{'notebook':<14}{'CPU h':>10}{'GPU h':>10}{'held':>10}   what it will do (what the ledger lacks)")
    total_cpu = total_gpu = 0.0
    for s in plan.stages:
        cpu_h, gpu_h = s.seconds("cpu") / 3600, s.seconds("cuda") / 3600
        total_cpu += cpu_h
        total_gpu += gpu_h
        held = f"{s.units_held}/{s.units_total}" if s.units_total is not None else "-"
        lines.append(f"{s.notebook:<14}{cpu_h:>10.2f}{gpu_h:>10.3f}{held:>10}   {s.actions[0] if s.actions else ''}")
        lines += [f"{'':<47}{a}" for a in s.actions[1:]]
    lines.append(f"{'total':<14}{total_cpu:>10.2f}{total_gpu:>10.3f}")
    lines.append("")
    lines.append(f"CPU figures: {tp['cpu']['source']} ({tp['cpu']['description']}); GPU figures: {tp['cuda']['source']} "
                 f"({tp['cuda']['description']}). Table: t2s_lib/data/throughput.yaml")
    lines.append("nothing is missing" if plan.ok else f"{len(plan.missing)} item(s) missing (see above); nothing was run")
    return "\n".join(lines)
