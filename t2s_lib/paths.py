"""Every path the study uses, in one place.

Environment variables override the defaults so a cluster can point caches at scratch space:

* ``T2S_CACHE``: downloaded/converted assets and datasets (default ``<project>/.cache``).
* ``T2S_RUNS``: stage outputs of study runs (default ``<project>/runs``).
* ``T2S_DATA_ROOT``: root of the paper's 20 downstream datasets (no default; see tasks).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
PUBLISHED_DATA_DIR = PACKAGE_DIR / "data" / "published"
CURATED_DATA_DIR = PACKAGE_DIR / "data"
PROFILES_DIR = PACKAGE_DIR / "profiles"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
FIGURES_DIR = PROJECT_ROOT / "figures"


def cache_dir() -> Path:
    """Root of fetched assets and datasets (``T2S_CACHE`` or ``<project>/.cache``)."""
    return Path(os.environ.get("T2S_CACHE", PROJECT_ROOT / ".cache")).expanduser()


def runs_dir() -> Path:
    """Root of study outputs (``T2S_RUNS`` or ``<project>/runs``)."""
    return Path(os.environ.get("T2S_RUNS", PROJECT_ROOT / "runs")).expanduser()


def profile_run_dir(profile: str) -> Path:
    """Stage outputs of one profile: ``runs/<profile>/``."""
    return runs_dir() / profile
