"""Every path the study uses, in one place: nothing else builds a run or cache path.

Environment variables override the defaults so a cluster can point caches at scratch space:

* ``T2S_CACHE``: downloaded/converted assets and datasets (default ``<project>/.cache``).
* ``T2S_RUNS``: stage outputs of study runs (default ``<project>/runs``).
* ``T2S_DATA_ROOT``: root of the paper's 20 downstream datasets (no default; see tasks).
* ``T2S_LEDGER``: root of the results ledger, one folder per profile (default ``<runs>/ledger``;
  the committed ledger that ``make figures`` reads is ``<project>/results``).

Two layout objects name every folder and file:

* :class:`CacheLayout` (``cache_layout()``): what is fetched or built once per machine
  (packages from the three registries, HDRIs, object libraries, offline datasets, Task2Vec
  embeddings, trained probes).
* :class:`StudyLayout` (``Profile.layout``): one study run's stage outputs under
  ``<runs>/<profile>/`` and its figures folder. The layout is documented in docs/DEVELOPING.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
PUBLISHED_DATA_DIR = PACKAGE_DIR / "data" / "published"
CURATED_DATA_DIR = PACKAGE_DIR / "data"
PROFILES_DIR = PACKAGE_DIR / "profiles"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
FIGURES_DIR = PROJECT_ROOT / "figures"
RESULTS_DIR = PROJECT_ROOT / "results"  # the committed results ledger (t2s_lib.ledger)
#: a policy name ending so is notebook 09's, on the 256-setting table (StudyLayout.policy_summary)
LIVE256_SUFFIX = "-256"


def cache_dir() -> Path:
    """Root of fetched assets and datasets (``T2S_CACHE`` or ``<project>/.cache``)."""
    return Path(os.environ.get("T2S_CACHE", PROJECT_ROOT / ".cache")).expanduser()


def runs_dir() -> Path:
    """Root of study outputs (``T2S_RUNS`` or ``<project>/runs``)."""
    return Path(os.environ.get("T2S_RUNS", PROJECT_ROOT / "runs")).expanduser()


def ledger_root() -> Path:
    """Root of the results ledger (``T2S_LEDGER`` or ``<runs>/ledger``); one folder per profile below."""
    return Path(os.environ.get("T2S_LEDGER", runs_dir() / "ledger")).expanduser()


def figures_work_dir(purpose: str) -> Path:
    """Scratch run folders of ``make figures`` (``replay``) and its check (``check``): ``<runs>/figures-<purpose>``."""
    return runs_dir() / f"figures-{purpose}"


def profile_run_dir(profile: str) -> Path:
    """Default stage-output folder of a profile: ``<runs>/<profile>/``."""
    return runs_dir() / profile


def safe_name(text: str) -> str:
    """A file-name-safe form of a task/backbone name or path (``/`` and odd characters -> ``_``)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(text)).strip("_") or "_"


@dataclass(frozen=True)
class CacheLayout:
    """The per-machine cache (``T2S_CACHE``)::

        packages/apt/<package>/          a Debian package unpacked with dpkg -x (no root)
        packages/npm/<name>-<version>/   an npm tarball unpacked (``package/...``)
        packages/pypi/<name>-<version>/  a wheel unpacked
        packages/downloads/              archives while they are unpacked (emptied after)
        assets/hdri/                     <name>.npy (float16 equirect) + index.json
        assets/library/<name>/           index.json + models/<id>.npz (render-ready meshes)
        assets/sweethome3d/<catalog>/    the unzipped Sweet Home 3D catalogs
        assets/sources/<name>/           other unpacked model archives (e.g. UFO:AI's 0models.pk3)
        datasets/<task>/                 data.npz + source.json of an offline task
        task2vec/                        cached embeddings keyed by (data, probe, options)
        probes/<recipe-hash>/            Task2Vec probes trained by the study (checkpoint.pt)
    """

    root: Path

    # -- registry packages ------------------------------------------------------------------
    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def package_downloads(self) -> Path:
        return self.packages / "downloads"

    def package(self, registry: str, name: str) -> Path:
        """Unpacked package ``name`` (with its version for npm/PyPI) of ``registry`` (apt, npm, pypi)."""
        return self.packages / registry / safe_name(name)

    # -- renderer assets -----------------------------------------------------------------------
    @property
    def assets(self) -> Path:
        return self.root / "assets"

    @property
    def hdri(self) -> Path:
        return self.assets / "hdri"

    @property
    def libraries(self) -> Path:
        return self.assets / "library"

    def library(self, name: str) -> Path:
        return self.libraries / name

    @property
    def sweethome3d_catalogs(self) -> Path:
        return self.assets / "sweethome3d"

    def asset_source(self, name: str) -> Path:
        """An unpacked model archive of the object library (``assets/sources/<name>``)."""
        return self.assets / "sources" / safe_name(name)

    # -- downstream data and embeddings ----------------------------------------------------
    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def dataset(self, name: str) -> Path:
        return self.datasets / name

    @property
    def task2vec(self) -> Path:
        return self.root / "task2vec"

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    def probe(self, recipe_hash: str) -> Path:
        return self.probes / recipe_hash


def cache_layout() -> CacheLayout:
    """The cache layout under ``T2S_CACHE`` (read at call time, so tests can redirect it)."""
    return CacheLayout(cache_dir())


@dataclass(frozen=True)
class StudyLayout:
    """Stage outputs of one study run (``<runs>/<profile>/``) and its figures folder::

        notebooks/<NN_name>.ipynb         executed copies (t2s study)
        render/<setting_key>/             rendered image sets (ImageFolder + manifest.jsonl + dataset.json)
        pretrain/<setting_key>/           pre-training runs (config.json, checkpoint.pt, metrics.jsonl)
        task2vec/<task>.npz (+ .json)     Task2Vec embeddings of the profile's tasks
        task2vec/fractions/               supplementary Table 1 vectors (<task>__f<fraction>.npz)
        policy/<variant>/summary.json     policy runs on the published table (+ curves.json)
        policy/baselines.json
        policy_small_study/               the policy on the study's own reward table
        policy_live256/<method>/          the methods on the 256-setting table (notebook 09): summary.json
        rewards256/, rewards256_picks/    the 256-setting table's cells; the picked settings on fresh seeds
        evaluate/results.csv              every evaluation (tidy: backbone, task, protocol, options, metric, value)
        evaluate/finetuned/<backbone>__<task>.pt
        cka/<tag>.npz (+ .json)
        scaling/<point>/                  one reward table per scaling-study point (base, classes-10, ...)
        rewards/                          the reward-table builder's output (see t2s_lib.rewards.build):
          spec.json, cells/<key>/s<seed>/, reward_table.json ({task: {setting_key: 5-NN %}},
          the published reward_db format), rewards.csv (tidy, every seed)
    """

    run_dir: Path
    figures_dir: Path

    @property
    def cache(self) -> CacheLayout:
        return cache_layout()

    @property
    def notebooks(self) -> Path:
        return self.run_dir / "notebooks"

    # -- rendering and pre-training ---------------------------------------------------------
    @property
    def render(self) -> Path:
        return self.run_dir / "render"

    def image_set(self, setting_key: str) -> Path:
        return self.render / setting_key

    @property
    def pretrain(self) -> Path:
        return self.run_dir / "pretrain"

    def pretrain_run(self, name: str) -> Path:
        return self.pretrain / name

    def checkpoint(self, name: str) -> Path:
        return self.pretrain_run(name) / "checkpoint.pt"

    # -- Task2Vec -------------------------------------------------------------------------------
    @property
    def task2vec(self) -> Path:
        return self.run_dir / "task2vec"

    def task_vector(self, task: str) -> Path:
        return self.task2vec / f"{safe_name(task)}.npz"

    @property
    def task2vec_fractions(self) -> Path:
        return self.task2vec / "fractions"

    # -- policy ---------------------------------------------------------------------------------
    @property
    def policy(self) -> Path:
        return self.run_dir / "policy"

    @property
    def policy_small_study(self) -> Path:
        return self.run_dir / "policy_small_study"

    @property
    def policy_live256(self) -> Path:
        return self.run_dir / "policy_live256"

    def policy_summary(self, variant: str) -> Path:
        """A policy's summary (its picks) by name: ``<name>-256`` is notebook 09's on the 256-setting table
        (``paper-256``, ``measured-k16-256``), any other name a variant of notebook 05's small study."""
        if variant.endswith(LIVE256_SUFFIX):
            return self.policy_live256 / variant[: -len(LIVE256_SUFFIX)] / "summary.json"
        return self.policy_small_study / variant / "summary.json"

    # -- evaluation -----------------------------------------------------------------------------
    @property
    def evaluate(self) -> Path:
        return self.run_dir / "evaluate"

    @property
    def results_csv(self) -> Path:
        return self.evaluate / "results.csv"


    def finetuned(self, backbone: str, task: str) -> Path:
        return self.evaluate / "finetuned" / f"{safe_name(backbone)}__{safe_name(task)}.pt"

    # -- CKA, reward tables, figures --------------------------------------------------------------
    @property
    def cka(self) -> Path:
        return self.run_dir / "cka"

    def cka_result(self, tag: str) -> Path:
        """Output stem of one CKA computation (``<stem>.npz`` + ``<stem>.json``)."""
        return self.cka / safe_name(tag)

    @property
    def rewards(self) -> Path:
        return self.run_dir / "rewards"

    @property
    def rewards256(self) -> Path:
        """The 256-setting table's folder (notebook 09): its own cells, the demo's adopted from ``rewards``."""
        return self.run_dir / "rewards256"

    @property
    def rewards256_picks(self) -> Path:
        """The settings the methods of notebook 09 picked, pre-trained on fresh seeds (what they are scored on)."""
        return self.run_dir / "rewards256_picks"

    @property
    def reward_table(self) -> Path:
        """The study's own reward table (seed-averaged, published schema)."""
        return self.rewards / "reward_table.json"

    @property
    def scaling(self) -> Path:
        return self.run_dir / "scaling"

    def scaling_table(self, name: str) -> Path:
        """One scaling point's reward table (``base``, or ``<axis>-<value>``)."""
        return self.scaling / safe_name(name)

    @property
    def provenance(self) -> Path:
        return self.figures_dir / "provenance.json"

    def figure(self, name: str, suffix: str = ".png") -> Path:
        return self.figures_dir / f"{name}{suffix}"
