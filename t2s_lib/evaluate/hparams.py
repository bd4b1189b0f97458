"""Per-task best downstream hyper-parameters (reference 7.2), committed as ``data/evaluate/best_hparams.csv``."""

from __future__ import annotations

from functools import lru_cache

from ..errors import T2SError
from ..paths import CURATED_DATA_DIR

HPARAMS_CSV = CURATED_DATA_DIR / "evaluate" / "best_hparams.csv"
#: The most common published choice, used (and labelled as such) for tasks outside the table.
DEFAULT_HPARAMS = {"lr": 0.01, "batch_size": 128, "weight_decay": 0.0}


@lru_cache(maxsize=1)
def hparam_table():
    import pandas as pd

    return pd.read_csv(HPARAMS_CSV)


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def best_hparams(task: str, protocol: str, *, strict: bool = False) -> dict:
    """``{lr, batch_size, weight_decay, source}`` for a task and protocol (``linear`` / ``finetune``).

    Task names match case- and punctuation-insensitively (``chestx-pneumonia`` = ``ChestXPneumonia``).
    A task outside the published table gets :data:`DEFAULT_HPARAMS` with ``source='default'``
    unless ``strict``.
    """
    if protocol not in ("linear", "finetune"):
        raise T2SError(f"no hyper-parameter table for protocol {protocol!r}", "use linear or finetune")
    df = hparam_table()
    rows = df[(df["task"].map(_norm) == _norm(task)) & (df["protocol"] == protocol)]
    if rows.empty:
        if strict:
            raise T2SError(f"task {task!r} is not in the published hyper-parameter table",
                           f"use one of: {', '.join(sorted(df['task'].unique()))}, or --hparams grid")
        return {**DEFAULT_HPARAMS, "source": "default"}
    row = rows.iloc[0]
    return {"lr": float(row["lr"]), "batch_size": int(row["batch_size"]), "weight_decay": float(row["weight_decay"]),
            "source": "paper"}
