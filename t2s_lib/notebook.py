"""Helpers the notebooks call: resolve the profile, make folders, save figures and tables.

Every figure and table goes through :func:`save_figure` / :func:`save_table`, which write
atomically into the profile's ``figures_dir`` and record provenance (notebook, profile, time) in
``<figures_dir>/provenance.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import sys
from pathlib import Path

from .errors import os_fault
from .files import atomic_path, write_json
from .ledger import PROFILE_ENV, git_commit
from .procs import sigterm_as_interrupt
from .profiles import Profile, load_profile


def setup(profile: str | Profile = "smoke", out_dir: str | None = None, notebook: str = "") -> Profile:
    """Load the profile, create its run and figures folders, set a consistent plot style."""
    prof = load_profile(profile)
    if out_dir:
        prof = prof.with_run_dir(out_dir)
    prof = dataclasses.replace(prof, notebook=notebook)
    os.environ[PROFILE_ENV] = prof.name  # library code called from here records into this profile's ledger
    install_fault_handler()
    # an interrupted `t2s study` terminates this kernel: unwind like Ctrl-C so a running build cancels its jobs
    sigterm_as_interrupt()
    prof.run_dir.mkdir(parents=True, exist_ok=True)
    prof.figures_dir.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg") if not _in_jupyter() else None
        import seaborn as sns

        sns.set_theme(context="notebook", style="whitegrid")
    except ImportError:  # plotting is optional for library use
        pass
    return prof


def _fault_handler(shell, etype, value, tb, tb_offset=None):
    """IPython custom-exception handler: a machine fault (read-only or full disk, permission,
    memory) is printed as error/fix first; the cell still fails (papermill stops) with its traceback."""
    error = os_fault(value)
    if error is not None:
        print(f"error: {error.problem}" + (f"\n  fix: {error.fix}" if error.fix else ""), file=sys.stderr)
    return shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)


def install_fault_handler(shell=None) -> bool:
    """In IPython (a notebook kernel), name machine faults as the CLI does; True when installed."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((OSError, MemoryError, RuntimeError), _fault_handler)
    return True


def _in_jupyter() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False


def _record(prof: Profile, filename: str) -> None:
    prov_path = prof.layout.provenance
    try:
        prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    except json.JSONDecodeError:
        prov = {}
    prov[filename] = {
        "notebook": prof.notebook,
        "profile": prof.name,
        "commit": git_commit(),
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(prov_path, dict(sorted(prov.items())))


def save_figure(fig, name: str, prof: Profile, *, dpi: int = 150) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<name>.png`` (atomically) and record provenance."""
    path = prof.layout.figure(name)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    _record(prof, path.name)
    return path


def save_table(df, name: str, prof: Profile, *, floatfmt: str = ".2f") -> Path:
    """Save a pandas table as ``<name>.csv`` and ``<name>.md`` in the figures folder."""
    csv_path = prof.layout.figure(name, ".csv")
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp)
    md_path = prof.layout.figure(name, ".md")
    with atomic_path(md_path) as tmp:
        tmp.write_text(df.to_markdown(floatfmt=floatfmt) + "\n")
    _record(prof, csv_path.name)
    _record(prof, md_path.name)
    return csv_path
