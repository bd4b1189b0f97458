"""Benchmark: what the results ledger adds to one reward cell, and what the recorded study cost.

1. Overhead: on a copy of the committed cpu ledger (so the files are study-sized), the ledger work of one
   cell of the cpu profile (a lookup per record, then 1 pre-training + 22 evaluation appends, each
   re-reading the grown file as the next lookup would) against the median wall time of a recorded
   cell. Target: < 2 % of a cell.
2. Cost: the CPU-hours and wall hours per ledger kind that results/<profile>/ holds (measured in
   slices; machines in the records' provenance).

Usage: python benchmarks/ledger.py [--profile cpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from t2s_lib.ledger import Ledger, get_kind, provenance
from t2s_lib.paths import RESULTS_DIR


def one_cell(led: Ledger, n: int) -> None:
    ident = {"setting": "1_1_1_1_1_3_0_1_1", "seed": 1000 + n, "render": {"images": 4500}, "recipe": {"epochs": 30}}
    led.lookup("reward.pretrain", ident)
    led.append("reward.pretrain", ident, {"final_epoch": {}, "epochs": [{"epoch": e, "train_loss": 1.0}
                                                                        for e in range(30)],
                                          "images": 4500, "classes": 20, "manifest": {}}, provenance(1, 1))
    for task in range(11):
        for kind in ("reward.knn", "reward.knn_val"):
            full = {**ident, "task": f"t{task}", "split": kind}
            led.lookup(kind, full)
            led.append(kind, full, {"value": 50.0, "seconds": 1.0}, provenance(1, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    source = RESULTS_DIR / args.profile
    committed = Ledger(source)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.2f}")
    cells = [float(r.provenance["wall_seconds"]) for r in committed.records("reward.pretrain")]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / args.profile
        shutil.copytree(source, copy)
        times = []
        for n in range(args.repeats):
            led = Ledger(copy)
            t0 = time.perf_counter()
            one_cell(led, n)
            times.append(time.perf_counter() - t0)
    overhead = statistics.median(times)
    cell = statistics.median(cells) if cells else float("nan")
    print(f"ledger work per cell: {overhead * 1000:.1f} ms (median of {args.repeats}); a recorded cell's "
          f"pre-training takes {cell:.0f} s wall (median of {len(cells)}): {100 * overhead / cell:.3f} % (target < 2 %)")
    for kind in committed.kinds_present():
        recs = [r for r in committed.records(kind) if r.numerics == get_kind(kind).numerics]
        cpu = sum(float(r.provenance.get("cpu_seconds", 0)) for r in recs) / 3600
        wall = sum(float(r.provenance.get("wall_seconds", 0)) for r in recs) / 3600
        machines = Counter(str(r.provenance.get("cpu")) for r in recs).most_common(2)
        print(f"{kind:18s} {len(recs):5d} records {cpu:6.2f} CPU-h {wall:6.2f} wall-h  {machines}")


if __name__ == "__main__":
    main()
