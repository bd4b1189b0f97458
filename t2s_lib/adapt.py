"""``t2s adapt``: the simulator setting for a user's own task, measured with a reward table's stored backbones.

For a new task (an ImageFolder or a registered task):

1. its Task2Vec embedding (the profile's probe), and the table's tasks nearest to it;
2. measured selection (:mod:`t2s_lib.policy.measured`): a prior over the task's reward row from the
   table's rows; K settings measured one at a time, each a 5-NN of the setting's stored backbone with
   a validation split carved from the task's *training* data (30 % of each class as queries, the rest
   as the neighbour bank; the test split is never touched); the best measured setting is recommended;
3. the reasons: the measured values, the posterior main effects of the 8 parameters, and the
   predicted gain over domain randomisation and over the table's best fixed setting;
4. optionally ``--render N --pretrain``: N images of the chosen setting and a backbone pre-trained
   on them with the profile's recipe.

Output folder: ``recommendation.json`` (setting, budget, measured values, baselines, ...),
``report.html`` (self-contained, plots embedded), and ``render/`` / ``pretrain/`` when asked.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import T2SError
from .files import check_output_path, write_json, write_text
from .evaluate.validation import VAL_FRACTION
from .profiles import Profile


@dataclass
class TableBackbones:
    """A reward table's usable part: tasks x settings rows and each setting's stored backbone."""

    table: Path
    keys: list[str]
    rows: np.ndarray  # [tasks, settings], seed-averaged 5-NN %
    tasks: list[str]
    checkpoints: dict[str, Path]
    knn: dict[str, Any]


def table_backbones(table: str | Path) -> TableBackbones:
    from .rewards.analysis import load_rows, reward_matrix
    from .rewards.cells import checkpoint_path
    from .rewards.spec import Cell, read_spec

    table = Path(table)
    spec = read_spec(table)
    checkpoints = {k: checkpoint_path(table, Cell(k, spec.seeds[k][0])) for k in spec.settings}
    checkpoints = {k: p for k, p in checkpoints.items() if p.is_file()}
    if not checkpoints:
        raise T2SError(f"reward table {table} has no stored backbones (cells/<key>/s<seed>/pretrain/checkpoint.pt)",
                       "use a table built by `t2s rewards build` (it keeps every backbone), or build one first")
    matrix = reward_matrix(load_rows(table)).drop(index="mean", errors="ignore")
    keys = [k for k in spec.settings if k in checkpoints and k in matrix.columns]
    matrix = matrix[keys].dropna()
    if len(matrix) < 2:
        raise T2SError(f"reward table {table} has fewer than 2 tasks with every setting measured",
                       "finish building it (`t2s rewards build`, then `t2s rewards status`)")
    return TableBackbones(table, keys, matrix.to_numpy(dtype=float), list(matrix.index), checkpoints, dict(spec.knn))


def validation_measure(task, tb: TableBackbones, *, device: str = "auto", seed: int = 0,
                       log: Callable[[str], None] = print) -> tuple[Callable[[list[int]], list[float]], dict[str, Any]]:
    """measure_columns(cols) -> 5-NN % of each column's backbone on the task's validation split
    (:class:`~t2s_lib.evaluate.validation.ValidationSplit`), and the split's sizes plus the
    classes it has no query of (``classes_without_queries``: named in the log, not silently dropped)."""
    from .evaluate.validation import ValidationSplit

    split = ValidationSplit(task, tb.knn, seed)
    # a class with a single (kept) training image lands in the bank only: the measurement cannot see it
    queried = set(np.asarray(split.queries.dataset.targets).tolist())
    missing = [c for i, c in enumerate(task.classes) if i not in queried]
    if not queried:
        raise T2SError(f"task {task.name!r}: the validation split has no validation query (every class has fewer "
                       f"than 2 training images{'' if tb.knn.get('max_train') is None else ' in the capped split'})",
                       "add training images: at least 2 per class (3 or more for a 70/30 folder of class folders)")
    if missing:
        log(f"[adapt] warning: class(es) {missing[:10]}{' ...' if len(missing) > 10 else ''} of {task.name!r} have "
            "no validation query (a single training image, kept in the neighbour bank): the measured 5-NN ignores "
            "them; add training images to measure them")

    def measure_columns(cols: list[int]) -> list[float]:
        out = []
        for j in cols:
            value = split.accuracy(str(tb.checkpoints[tb.keys[j]]), device)
            log(f"[adapt] measured {tb.keys[j]}: 5-NN {value:.2f} % on the validation split")
            out.append(value)
        return out

    return measure_columns, {**split.sizes, "classes_without_queries": missing}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _points(x: float | None) -> str:
    return "n/a (not in the table)" if x is None else f"{x:+.2f} points"


def _input_notes(rec: dict[str, Any]) -> str:
    """Warnings about the task's images for the report: skipped files, classes the validation cannot see."""
    notes = []
    if rec.get("bad_images_skipped"):
        names = ", ".join(html.escape(Path(p).name) for p in rec["bad_images"][:5])
        notes.append(f"skipped {rec['bad_images_skipped']} undecodable image(s) of the training split ({names})")
    missing = rec["validation"].get("classes_without_queries") or []
    if missing:
        notes.append(f"class(es) {html.escape(', '.join(missing[:10]))} have no validation query (a single training "
                     "image): the measured 5-NN ignores them")
    return "".join(f"<p><b>Warning:</b> {n}.</p>" for n in notes)


def _report_html(rec: dict[str, Any], figures: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(rec['codes'][k])}</td><td>{v:.2f}</td></tr>"
                   for k, v in sorted(rec["measured"].items(), key=lambda kv: -kv[1]))
    effects = "".join(f"<tr><td>{html.escape(p)}</td><td>{'n/a' if e is None else f'{e:+.2f}'}</td></tr>"
                      for p, e in rec["main_effects"].items())
    near = ", ".join(f"{html.escape(t)} ({s:.2f})" for t, s in rec.get("nearest_tasks", [])) or "n/a"
    imgs = "".join(f"<h3>{html.escape(t)}</h3><img src='data:image/png;base64,{b}'/>" for t, b in figures)
    b = rec["baselines"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>t2s adapt: {html.escape(rec['task'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:2px 10px}}img{{max-width:100%}}</style></head>
<body><h1>Recommended simulator setting for <code>{html.escape(rec['task'])}</code></h1>
<p><b>Setting <code>{html.escape(rec['setting'])}</code></b> ({html.escape(rec['codes'][rec['setting']])}; letters: R rotation,
S camera distance, I light intensity, C light colour, D light direction, B blur, G background, M materials).</p>
<p>Measured with K = {rec['budget']} of the {rec['table_settings']} stored backbones of the reward table
<code>{html.escape(rec['table'])}</code>: 5-NN on a validation split of the task's training data
({rec['validation']['bank']} bank / {rec['validation']['queries']} query images; the test split was not used).</p>
{_input_notes(rec)}
<p>Predicted gain over domain randomisation (<code>{b['domain_randomization']}</code>): {_points(rec['gain_over_domain_randomization'])};
over the table's best fixed setting (<code>{b['best_fixed']}</code>): {_points(rec['gain_over_best_fixed'])}
(measured values where measured, else the posterior mean).</p>
<p>Nearest tasks of the table by Task2Vec cosine: {near}</p>
<h2>Measured settings</h2><table><tr><th>setting</th><th>varies</th><th>5-NN %</th></tr>{rows}</table>
<h2>Posterior main effects (5-NN % with the parameter varying minus fixed)</h2><table>{effects}</table>
{imgs}</body></html>"""


def adapt(task_spec: str, prof: Profile, out: str | Path, *, rewards: str | Path | None = None, budget: int | None = None,
          render: int | None = None, pretrain: bool = False, on_bad_image: str = "raise",
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Recommend a setting for ``task_spec``; writes ``out/recommendation.json`` and ``out/report.html``.

    ``on_bad_image``: an undecodable training image fails the run (``raise``, before any table is
    built or backbone measured) or is left out and counted (``skip``), as in ``t2s task2vec``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .policy.measured import DEFAULT_CONFIG, RowPrior, adapt_to_table, check_budget, default_budget, posterior, select
    from .rewards.analysis import identifies_main_effects
    from .settings import PARAMETERS, PRESETS, resolve_setting
    from .tasks import get_task

    out = check_output_path(out)
    if pretrain and not render:
        raise T2SError("--pretrain needs --render N (the images to pre-train on)", "add e.g. --render 4000")
    task = get_task(task_spec, root=prof.tasks.data_root)
    task.labels("train")  # an unreadable folder or missing data fails here, before any measurement
    # every training image decoded once now: a bad file fails (or is skipped) before hours of table building
    bad_images = task.check_images("train", on_bad_image)
    if bad_images:
        log(f"[adapt] skipped {len(bad_images)} undecodable image(s) of the training split: "
            f"{', '.join(bad_images[:5])}{' ...' if len(bad_images) > 5 else ''}")
    if rewards is None and not prof.layout.reward_table.is_file():
        from .rewards.study import build_profile_table

        log(f"[adapt] no reward table for profile {prof.name!r} yet: building it first ({prof.layout.rewards})")
        build_profile_table(prof, log=log)
    tb = table_backbones(rewards or prof.layout.rewards)
    k = check_budget(default_budget(len(tb.keys)) if budget is None else budget, len(tb.keys))
    cfg = adapt_to_table(DEFAULT_CONFIG, len(tb.keys))
    prior = RowPrior.fit(tb.rows, tb.keys, cfg)
    measure, sizes = validation_measure(task, tb, device=prof.device, seed=prof.seed, log=log)
    selection = select(prior, measure, k, cfg)
    chosen = tb.keys[selection.chosen[k]]
    measured = {tb.keys[j]: float(v) for j, v in zip(selection.measured, selection.values)}
    post = posterior(prior, selection.measured, selection.values, cfg.noise_sd ** 2)
    predicted = {key: measured.get(key, float(post.mean[j])) for j, key in enumerate(tb.keys)}
    dr = PRESETS["domain_randomization"].key
    best_fixed = tb.keys[int(np.argmax(tb.rows.mean(axis=0)))]
    effects: dict[str, float | None] = {p: None for p in PARAMETERS}  # None: the table cannot identify them
    if identifies_main_effects(tb.keys):
        import pandas as pd

        from .rewards.analysis import main_effects

        frame = pd.DataFrame([list(post.mean)], index=["posterior"], columns=tb.keys)
        effects = main_effects(frame).set_index("parameter")["effect"].to_dict()
    nearest = _nearest_tasks(task, prof, tb)
    rec: dict[str, Any] = {
        "task": task.name, "setting": chosen, "budget": k, "measured": measured,
        "measured_order": list(measured), "predicted": predicted,
        "baselines": {"domain_randomization": dr, "best_fixed": best_fixed, "all_off": PRESETS["all_off"].key},
        "gain_over_domain_randomization": predicted[chosen] - predicted[dr] if dr in predicted else None,
        "gain_over_best_fixed": predicted[chosen] - predicted[best_fixed],
        "main_effects": effects, "nearest_tasks": nearest, "table": str(tb.table), "table_settings": len(tb.keys),
        "table_tasks": tb.tasks, "config": cfg.to_dict(),
        "validation": {"fraction": VAL_FRACTION, **sizes, "seed": prof.seed},
        "codes": {key: resolve_setting(key).code for key in tb.keys},
        "bad_images_skipped": len(bad_images), "bad_images": bad_images[:20],
    }
    out.mkdir(parents=True, exist_ok=True)
    if render:
        rec.update(_render_and_pretrain(chosen, prof, out, render, pretrain, log))
    figures = []
    fig, ax = plt.subplots(figsize=(7, 3))
    order = sorted(measured, key=measured.get, reverse=True)
    ax.bar(range(len(order)), [measured[o] for o in order], color=["tab:green" if o == chosen else "tab:blue" for o in order])
    ax.set_xticks(range(len(order)), [rec["codes"][o] for o in order], rotation=45, fontsize=7, family="monospace")
    ax.set_ylabel("5-NN % (validation)")
    ax.set_ylim(min(measured.values()) - 5, max(measured.values()) + 2)
    figures.append(("Measured settings (green: recommended)", _png(fig)))
    if all(effects[p] is not None for p in PARAMETERS):
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(range(len(PARAMETERS)), [effects[p] for p in PARAMETERS])
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(PARAMETERS)), list(PARAMETERS), rotation=30, fontsize=8)
        ax.set_ylabel("effect (points)")
        figures.append(("Posterior main effects", _png(fig)))
    write_json(out / "recommendation.json", rec)
    write_text(out / "report.html", _report_html(rec, figures))
    return rec


def _nearest_tasks(task, prof: Profile, tb: TableBackbones, top: int = 3) -> list[tuple[str, float]]:
    """The table's tasks closest to ``task`` by Task2Vec cosine (when their embeddings are in the run folder)."""
    from .task2vec import embed_task
    from .task2vec.distances import check_comparable, cosine_similarity
    from .task2vec.embed import Embedding
    from .task2vec.study import probe_checkpoint_of

    paths = {t: prof.layout.task_vector(t) for t in tb.tasks}
    paths = {t: p for t, p in paths.items() if p.is_file()}
    if not paths:
        return []
    opts = prof.task2vec.options(probe_checkpoint=probe_checkpoint_of(prof))
    emb = embed_task(task, opts, device=prof.device, threads=prof.task2vec.threads)
    others = {t: Embedding.load(p) for t, p in paths.items()}
    try:
        check_comparable({task.name: emb.meta, **{t: e.meta for t, e in others.items()}})
    except T2SError:
        return []  # embedded with another probe: no similarity to report
    sims = sorted(((t, cosine_similarity(emb.hessian, e.hessian)) for t, e in others.items()), key=lambda x: -x[1])
    return [(t, round(float(s), 4)) for t, s in sims[:top]]


def _render_and_pretrain(key: str, prof: Profile, out: Path, images: int, pretrain: bool,
                         log: Callable[[str], None]) -> dict[str, Any]:
    from .render import RenderJob, run_render_job

    spec = prof.pretrain.render
    job = RenderJob.create(key, images, spec.img_size, seed=prof.seed, classes=spec.classes, class_rule=spec.class_rule,
                           library=prof.render.library,
                           msaa=prof.render.msaa, workers=prof.render.workers)
    data = run_render_job(job, out / "render", progress=False)
    result: dict[str, Any] = {"rendered": str(data)}
    log(f"[adapt] rendered {images} images of {key} -> {data}")
    if pretrain:
        from .train.loop import pretrain as run_pretrain

        cfg = prof.pretrain.config(data=str(data), out=str(out / "pretrain"), device=prof.device, progress=False)
        result["checkpoint"] = str(run_pretrain(cfg.check("t2s adapt")))
        log(f"[adapt] pre-trained -> {result['checkpoint']}")
    return result
