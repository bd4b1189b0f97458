"""Benchmark: one 1000-epoch run of the published controller (paper loss) on CPU.

Prints wall and CPU seconds per run and optimiser steps per second. Target: <= 10 s per run.
Usage: python benchmarks/policy.py [--runs 3] [--loss paper]
"""

from __future__ import annotations

import argparse
import platform
import time

from t2s_lib.policy.task2sim import fit_controller
from t2s_lib.policy import published_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loss", default="paper", choices=["paper", "per-task"])
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()
    problem = published_problem()
    steps = sum(3 * (6 if e >= 50 else 1) for e in range(args.epochs))
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    walls, cpus = [], []
    for seed in range(args.runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fit_controller(problem, seed, loss=args.loss, epochs=args.epochs, record_curves=False)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        print(f"run {seed}: wall {walls[-1]:.2f} s, cpu {cpus[-1]:.2f} s, {steps / walls[-1]:.0f} optimiser steps/s")
    best = min(walls)
    print(f"controller ({args.loss} loss, {args.epochs} epochs, {steps} steps): best wall {best:.2f} s, "
          f"median cpu {sorted(cpus)[len(cpus) // 2]:.2f} s  (target <= 10 s)")


if __name__ == "__main__":
    main()
