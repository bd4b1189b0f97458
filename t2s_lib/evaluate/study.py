"""Notebook 04 logic: linear probes and fine-tuning of the comparison backbones on the profile's tasks
(the 5-NN reward of every setting is the reward-table builder's, :mod:`t2s_lib.rewards`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..ledger import active as active_ledger
from ..profiles import Profile
from .results import append_results
from .run import EvalOptions, evaluate_backbone

EVAL_KIND = "evaluate.protocol"
#: EvalOptions fields that do not change a number (where it runs, how many loader workers, where a model goes)
NOT_NUMERIC = ("device", "workers", "save_model", "feature_batch")


def numeric_options(opts: EvalOptions) -> dict[str, Any]:
    """Every evaluation option that determines the result (protocol, sizes, hyper-parameters, seed)."""
    return {k: v for k, v in dataclasses.asdict(opts).items() if k not in NOT_NUMERIC}


def evaluation_identity(backbone: Any, task: str, opts: EvalOptions) -> dict[str, Any]:
    """The ledger identity of one evaluation: the backbone's identity, the task and every numeric option."""
    return {"backbone": backbone.identity, "task": task, "options": numeric_options(opts)}


def options_for(prof: Profile, protocol: str, **override: Any) -> EvalOptions:
    """EvalOptions from the profile's ``evaluate:`` section (+ its per-protocol block)."""
    return prof.evaluate.options(protocol, device=prof.device, seed=prof.seed, **override)


def protocol_tasks(prof: Profile, protocol: str) -> list[str]:
    return prof.evaluate.protocol_tasks(protocol)


def run_protocol(prof: Profile, backbones: Mapping[str, Any], protocol: str, *, progress: bool = True):
    """Evaluate every backbone (a :class:`~t2s_lib.rewards.study.Backbone`) on the protocol's tasks through the
    results ledger (a held result is not measured again; its backbone is then not even made); every row is
    upserted into results.csv. Returns the rows."""
    from tqdm.auto import tqdm

    layout = prof.layout
    ledger = active_ledger(prof.name)
    rows = []
    jobs = [(name, bb, task) for task in protocol_tasks(prof, protocol) for name, bb in backbones.items()]
    for name, bb, task in tqdm(jobs, desc=protocol, disable=not progress):
        extra = {}
        if protocol == "finetune" and not bb.cell.is_scratch:
            extra["save_model"] = str(layout.finetuned(name, task))
        opts = options_for(prof, protocol, **extra)
        identity = evaluation_identity(bb, task, opts)

        def measure(bb=bb, task=task, opts=opts, name=name) -> dict[str, Any]:
            row = evaluate_backbone(bb.load_spec(), task, opts, name=name)
            return {k: v for k, v in row.items() if k not in ("checkpoint", "train_features")}

        row = ledger.measure(EVAL_KIND, identity, measure, what=f"{protocol} of {name} on {task}")
        append_results(layout.results_csv, [row])
        rows.append(dict(row))
    return rows


@dataclasses.dataclass(frozen=True)
class FineTuned:
    """A comparison backbone fine-tuned on one task (notebook 04's fine-tuning), as CKA loads it: identified
    by its fine-tuning's ledger identity; :meth:`load_spec` fine-tunes it again where only the ledger's
    record of it exists (a fresh machine)."""

    prof: Profile
    backbone: Any  # a t2s_lib.rewards.study.Backbone
    task: str

    def options(self) -> EvalOptions:
        return options_for(self.prof, "finetune", save_model=str(self.prof.layout.finetuned(self.backbone.name, self.task)))

    @property
    def identity(self) -> dict[str, Any]:
        return {"finetuned": evaluation_identity(self.backbone, self.task, self.options())}

    def load_spec(self) -> str:
        path = self.prof.layout.finetuned(self.backbone.name, self.task)
        if not path.is_file():
            active_ledger(self.prof.name).require_measuring(EVAL_KIND, f"the fine-tuned {self.backbone.name} on {self.task}")
            evaluate_backbone(self.backbone.load_spec(), self.task, self.options(), name=self.backbone.name)
        return str(path)


def protocol_comparison(prof: Profile, labels: Mapping[str, str] | None = None):
    """Task x backbone table of the three protocols for the comparison backbones: 5-NN from the reward
    table (first seed; scratch seed 0), linear probe and fine-tuning from ``results.csv``; only the
    (task, backbone) pairs measured by every protocol the profile runs."""
    import pandas as pd

    from ..rewards.analysis import load_rows
    from ..rewards.spec import SCRATCH, read_spec
    from .results import read_results

    table = prof.layout.rewards
    spec = read_spec(table)
    rows = load_rows(table)
    knn = rows[rows["metric"] == "knn_top1"]
    firsts = {k: spec.seeds[k][0] for k in prof.setting_keys() if k in spec.seeds}
    firsts["scratch"] = min(spec.scratch_seeds) if spec.scratch_seeds else 0
    frames = []
    for name, seed in firsts.items():
        sel = knn[(knn["setting"] == (SCRATCH if name == "scratch" else name)) & (knn["seed"] == seed)]
        frames.append(sel.assign(backbone=name, protocol="knn")[["backbone", "task", "protocol", "value"]])
    if prof.layout.results_csv.is_file():
        res = read_results(prof.layout.results_csv)
        res = res[res["protocol"].isin(["linear", "finetune"]) & res["backbone"].isin(list(firsts))]
        frames.append(res[["backbone", "task", "protocol", "value"]])
    wide = pd.concat(frames).pivot_table(index=["task", "backbone"], columns="protocol", values="value", aggfunc="last")
    wide = wide.dropna()
    if labels:
        wide = wide.rename(index=dict(labels), level="backbone")
    return wide


def plot_accuracy_bars(rows, title: str):
    """Grouped bars: accuracy per task, one bar per backbone (the paper's per-task figure style)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(rows)[["backbone", "task", "value"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * df["task"].nunique() + 2), 3.8))
    sns.barplot(df, x="task", y="value", hue="backbone", ax=ax)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize=7, title="pre-training set", title_fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig
