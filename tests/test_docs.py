"""What the README and the docs point to exists, and committed figures come from committed code."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pytest

from t2s_lib.paths import PROJECT_ROOT

FIGURES = PROJECT_ROOT / "figures"
DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
NAMED = re.compile(r"figures/([A-Za-z0-9_.\-{},]+)")


def _expand(name: str) -> list[str]:
    """``a.{csv,md}`` -> ``a.csv``, ``a.md``."""
    parts = re.split(r"\{([^}]*)\}", name)
    choices = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def named_figure_files() -> dict[str, str]:
    found = {}
    for doc in DOCS:
        for match in NAMED.finditer(doc.read_text()):
            name = match.group(1).rstrip(".,")
            if not name or name.endswith("/") or "." not in name:
                continue  # a folder, a glob or a placeholder (figures/scaling_*, figures/<name>)
            for file in _expand(name):
                found.setdefault(file, doc.name)
    return found


def test_every_figures_file_named_in_readme_and_docs_exists():
    """... or its notebook is one that make figures could not regenerate from the ledger at this commit
    (figures/regeneration.json says which; INDEX.md shows their items as not measured)."""
    from t2s_lib.regenerate import REGENERATION_FILE, producer

    named = named_figure_files()
    assert named, "the README names no generated file"
    record = FIGURES / REGENERATION_FILE
    not_regenerated = set(json.loads(record.read_text())["not_in_ledger"]) if record.is_file() else set()
    missing = {f: doc for f, doc in named.items() if not (FIGURES / f).is_file() and producer(f) not in not_regenerated}
    assert not missing, f"named in the docs but not in figures/: {missing}"


def test_every_figures_file_has_a_producer():
    from t2s_lib.regenerate import producer

    assert producer("policy_live256_per_task.md") == "09_table256" and producer("policy_small_study.md") == "05_policy"
    orphans = [p.name for p in FIGURES.iterdir() if p.suffix in (".png", ".csv", ".md") and producer(p.name) is None]
    assert not orphans, f"figures/ files that no notebook claims (add their prefix to FIGURE_PRODUCERS): {orphans}"


def _commits() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in ("provenance.json", "findings.json"):
        for key, rec in json.loads((FIGURES / name).read_text()).items():
            out.setdefault(rec["commit"], set()).add(f"{name}:{key}")
    return out


def test_committed_figures_come_from_committed_code():
    commits = _commits()
    dirty = {c: sorted(w)[:3] for c, w in commits.items() if c.endswith("+dirty") or c == "unknown"}
    assert not dirty, f"figures written from an uncommitted tree (rerun their notebook on a clean checkout): {dirty}"


@pytest.mark.skipif(shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists(), reason="needs the git history")
def test_provenance_commits_are_in_the_history():
    unknown = []
    for commit in _commits():
        proc = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=PROJECT_ROOT, capture_output=True)
        if proc.returncode != 0:
            unknown.append(commit)
    if unknown and (PROJECT_ROOT / ".git" / "shallow").exists():
        pytest.skip(f"shallow clone: commits {unknown} not fetched")
    assert not unknown, f"provenance names commits that are not in this repository: {unknown}"
