"""Cost of one reward-table cell of a profile, per stage: render, pre-training, 5-NN (test + validation).

    python benchmarks/cell.py [--profile cpu] [--setting KEY] [--seed 0] [--out runs/benchmarks/cell.jsonl]

Builds the cell in a temporary table folder with the profile's own recipe (so what is timed is
exactly a cell of ``t2s rewards build``), one cell on one process with the profile's thread count,
and appends one JSON record (machine, load, stage seconds, pre-training img/s) to ``--out``.
Run it on a quiet machine: a second heavy process on 2 cores halves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from t2s_lib.profiles import load_profile
from t2s_lib.rewards.cells import cell_dir, run_cell
from t2s_lib.rewards.spec import Cell, spec_from_profile, write_spec


def _commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--setting", default="1_0_1_0_1_3_0_0_0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--label", default="", help="a name for this variant in the record")
    ap.add_argument("--out", default="runs/benchmarks/cell.jsonl")
    args = ap.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.overrides)
    prof = load_profile(args.profile, overrides=overrides or None)
    spec = spec_from_profile(prof, design="explicit", settings=[args.setting], seeds=[args.seed], anchors=False,
                             replicate_settings=[], replicate_seeds=[])
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp)
        spec = write_spec(table, spec)
        cell = Cell(spec.settings[0], args.seed)
        t0 = time.perf_counter()
        manifest = run_cell(table, spec, cell, log=lambda *_: None)
        total = time.perf_counter() - t0
        folder = cell_dir(table, cell)
        knn = sum(json.loads(p.read_text())["seconds"] for p in (folder / "knn").glob("*.json"))
        knn_val = sum(json.loads(p.read_text())["seconds"] for p in (folder / "knn_val").glob("*.json"))
        epochs = [json.loads(line) for line in (folder / "pretrain" / "metrics.jsonl").read_text().splitlines()]
        train_ips = sum(e.get("images", 0) for e in epochs) / max(sum(e.get("seconds", 0) for e in epochs), 1e-9)
    record = {"benchmark": "cell", "label": args.label, "profile": args.profile, "setting": cell.setting,
              "seed": args.seed, "commit": _commit(), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "threads": spec.threads, "load_before": round(load, 2),
              "date": time.strftime("%Y-%m-%d %H:%M"), "render_s": manifest.get("render_seconds"),
              "pretrain_s": manifest.get("pretrain_seconds"), "train_img_per_s": round(train_ips, 1),
              "knn_s": round(knn, 1), "knn_val_s": round(knn_val, 1), "total_s": round(total, 1),
              "overrides": overrides}
    print(json.dumps(record))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as fh:  # an append-only log of runs (one line each)
        fh.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
