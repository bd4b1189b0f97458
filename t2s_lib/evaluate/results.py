"""The tidy results table ``runs/<profile>/evaluate/results.csv`` and the reward table derived from it.

Columns: ``backbone, task, protocol, options, metric, value`` (+ ``checkpoint, seconds, written``).
``options`` is a compact JSON string of the options that change the number (sorted keys), so two
rows with the same (backbone, task, protocol, options, metric) are the same measurement: writing
again replaces the old row. Writes are atomic and serialised with a lock file, so parallel
evaluations can share one table.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..files import atomic_path, write_json

COLUMNS = ["backbone", "task", "protocol", "options", "metric", "value", "checkpoint", "seconds", "written"]
KEY = ["backbone", "task", "protocol", "options", "metric"]


def options_key(options: Mapping[str, Any]) -> str:
    return json.dumps(dict(sorted(options.items())), separators=(",", ":"), default=str)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_results(path: str | Path, rows: Iterable[Mapping[str, Any]]):
    """Upsert rows into the table at ``path``; returns the full table (pandas DataFrame)."""
    import pandas as pd

    path = Path(path)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    new = pd.DataFrame([{**{c: None for c in COLUMNS}, "written": now, **r} for r in rows], columns=COLUMNS)
    new["options"] = [o if isinstance(o, str) else options_key(o or {}) for o in new["options"]]
    with _locked(path):
        old = read_results(path) if path.is_file() else pd.DataFrame(columns=COLUMNS)
        if len(old):
            keys = set(map(tuple, new[KEY].astype(str).values))
            old = old[[tuple(r) not in keys for r in old[KEY].astype(str).values]]
        table = pd.concat([old, new], ignore_index=True) if len(old) else new
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    return table


def read_results(path: str | Path):
    import pandas as pd

    from ..errors import T2SError

    path = Path(path)
    if not path.is_file():
        raise T2SError(f"{path} not found", "run `t2s evaluate` first")
    return pd.read_csv(path, dtype={"options": str})


def reward_table(results, protocol: str = "knn", metric: str = "top1", backbone_to_key: Mapping[str, str] | None = None,
                 options: str | None = None) -> dict[str, dict[str, float]]:
    """``{task: {setting_key: accuracy %}}`` (the published reward_db format) from the results table.

    ``backbone_to_key`` maps backbone names to setting keys (default: the backbone name is the key).
    With several option sets for one (backbone, task), pass ``options`` to choose one.
    """
    df = results[(results["protocol"] == protocol) & (results["metric"] == metric)]
    if options is not None:
        df = df[df["options"] == options]
    table: dict[str, dict[str, float]] = {}
    for row in df.itertuples():
        key = (backbone_to_key or {}).get(row.backbone, row.backbone)
        table.setdefault(row.task, {})[key] = round(float(row.value), 4)
    return table


def write_reward_table(path: str | Path, table: Mapping[str, Mapping[str, float]]) -> Path:
    return write_json(path, {t: dict(v) for t, v in table.items()})
