"""Helpers the notebooks call: resolve the profile, make folders, save figures and tables.

Every figure and table goes through :func:`save_figure` / :func:`save_table`, which write
atomically into the profile's ``figures_dir`` and record provenance (notebook, profile, time) in
``<figures_dir>/provenance.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from .io import atomic_path, write_json
from .profiles import load_profile


def setup(profile: str = "smoke", out_dir: str | None = None, notebook: str = "") -> dict[str, Any]:
    """Load the profile, create its run and figures folders, set a consistent plot style."""
    prof = load_profile(profile)
    if out_dir:
        prof["run_dir"] = str(Path(out_dir).expanduser().resolve())
    Path(prof["run_dir"]).mkdir(parents=True, exist_ok=True)
    Path(prof["figures_dir"]).mkdir(parents=True, exist_ok=True)
    prof["notebook"] = notebook
    try:
        import matplotlib

        matplotlib.use("Agg") if not _in_jupyter() else None
        import seaborn as sns

        sns.set_theme(context="notebook", style="whitegrid")
    except ImportError:  # plotting is optional for library use
        pass
    return prof


def _in_jupyter() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False


def _record(prof: dict[str, Any], filename: str) -> None:
    figures_dir = Path(prof["figures_dir"])
    prov_path = figures_dir / "provenance.json"
    try:
        prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    except json.JSONDecodeError:
        prov = {}
    prov[filename] = {
        "notebook": prof.get("notebook", ""),
        "profile": prof.get("name"),
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(prov_path, dict(sorted(prov.items())))


def save_figure(fig, name: str, prof: dict[str, Any], *, dpi: int = 150) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<name>.png`` (atomically) and record provenance."""
    path = Path(prof["figures_dir"]) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    _record(prof, path.name)
    return path


def save_table(df, name: str, prof: dict[str, Any], *, floatfmt: str = ".2f") -> Path:
    """Save a pandas table as ``<name>.csv`` and ``<name>.md`` in the figures folder."""
    figures_dir = Path(prof["figures_dir"])
    csv_path = figures_dir / f"{name}.csv"
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp)
    md_path = figures_dir / f"{name}.md"
    with atomic_path(md_path) as tmp:
        tmp.write_text(df.to_markdown(floatfmt=floatfmt) + "\n")
    _record(prof, csv_path.name)
    _record(prof, md_path.name)
    return csv_path
