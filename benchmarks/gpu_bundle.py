"""Prepare, on this machine, what a bare GPU host needs for ``benchmarks/gpu_check.sh``.

A lent GPU machine reaches no registry and starts bare (its own python3 with torch, timm, numpy,
pandas... but no moderngl, trimesh, OpenEXR or papermill), and the device tool carries at most
64 MiB. This writes, under ``.gpu_bundle/`` (git-ignored; carry it with ``carry=[".gpu_bundle", ".gl"]``):

* ``wheels/``: the missing packages as cp312 manylinux wheels (``pip download``), with
  ``wheels/requirements.txt``;
* ``cache/``: a slim T2S_CACHE: the first ``--classes`` classes of the object library, ``--hdris``
  HDRIs (the default one first), and the offline tasks the smoke study uses there.

Usage (from the project root): ``.venv/bin/python benchmarks/gpu_bundle.py`` then, once per
session, the GL libraries as the device README says (``.gl/*.deb``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Needed by t2s_lib / the notebooks and absent from the GPU image (device README, KINDS.md 2026-11-17).
WHEELS = ["moderngl==5.13.0", "glcontext", "trimesh==5.2.0", "OpenEXR==3.5.3", "papermill==2.7.0", "nbclient",
          "nbformat==5.11.1", "ipykernel==7.4.0", "jupyter_client", "jupyter_core", "ipython", "traitlets", "pyzmq",
          "tornado", "comm", "debugpy", "matplotlib-inline", "nest-asyncio", "ansicolors", "tenacity", "entrypoints",
          "fastjsonschema", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "platformdirs",
          "decorator", "jedi", "parso", "pexpect", "ptyprocess", "prompt-toolkit", "wcwidth", "stack-data",
          "executing", "asttokens", "pure-eval", "ipython-pygments-lexers", "submitit"]
STUDY_TASKS = ["digits", "mnist", "textures", "faces"]
LIMIT_MIB = 56  # leaves room for the working tree under the 64 MiB the device tool carries


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def copy_library(src: Path, dst: Path, classes: int) -> None:
    idx = json.loads((src / "index.json").read_text())
    keep = sorted(idx["classes"])[:classes]
    ids = {m for c in keep for m in idx["classes"][c]}
    idx["classes"] = {c: idx["classes"][c] for c in keep}
    idx["models"] = [m for m in idx["models"] if m["id"] in ids]
    idx["n_models"], idx["excluded"] = len(idx["models"]), {}
    (dst / "models").mkdir(parents=True, exist_ok=True)
    for m in idx["models"]:
        shutil.copy2(src / m["file"], dst / m["file"])
    (dst / "index.json").write_text(json.dumps(idx, indent=1))


def copy_hdris(src: Path, dst: Path, n: int) -> None:
    idx = json.loads((src / "index.json").read_text())
    names = [idx["default"]] + [m["name"] for m in idx["hdris"] if m["name"] != idx["default"] and not m.get("indoor")]
    keep = set(names[:n])
    idx["hdris"] = [m for m in idx["hdris"] if m["name"] in keep]
    dst.mkdir(parents=True, exist_ok=True)
    for m in idx["hdris"]:
        shutil.copy2(src / f"{m['name']}.npy", dst / f"{m['name']}.npy")
    (dst / "index.json").write_text(json.dumps(idx, indent=1))
    shutil.copy2(src / ".done.json", dst / ".done.json")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from t2s_lib.paths import CacheLayout, cache_layout

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".gpu_bundle"))
    ap.add_argument("--library", default="sweethome3d")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--hdris", type=int, default=5)
    ap.add_argument("--no-wheels", action="store_true", help="only the slim cache (tests)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    src, dst = cache_layout(), CacheLayout(out / "cache")
    copy_library(src.library(args.library), dst.library(args.library), args.classes)
    copy_hdris(src.hdri, dst.hdri, args.hdris)
    for task in STUDY_TASKS:
        shutil.copytree(src.dataset(task), dst.dataset(task))
    if not args.no_wheels:
        wheels = out / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
                        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
                        "--platform", "manylinux_2_28_x86_64", "-d", str(wheels), *WHEELS], check=True)
        (wheels / "requirements.txt").write_text("\n".join(w.split("==")[0] for w in WHEELS) + "\n")
    mib = _size(out) / 2**20
    print(f"bundle {out}: {mib:.1f} MiB (cache {_size(out / 'cache') / 2**20:.1f} MiB)")
    if mib > LIMIT_MIB:
        print(f"error: the bundle is over {LIMIT_MIB} MiB; the device tool carries 64 MiB in all", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
