"""The GPU check's CPU dry path, run against the slim cache that is carried to a bare GPU host.

No GPU is lent to the machines that run this suite; the dry path runs every step of
benchmarks/gpu_check.sh tiny on the CPU (the study step only plans), so the script that a GPU
session runs once is known to work up to the device itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_on_the_carried_bundle(tmp_path, lib, digits_task):
    bundle = tmp_path / "bundle"
    res = subprocess.run([sys.executable, "benchmarks/gpu_bundle.py", "--out", str(bundle), "--no-wheels"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    assert size < 45 * 2**20  # + ~18 MiB of wheels + the working tree stay under the device tool's 64 MiB
    env = dict(os.environ, T2S_CACHE=str(bundle / "cache"), PY=sys.executable)
    out = tmp_path / "out"
    res = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").is_file() else ""
    assert res.returncode == 0, res.stdout + res.stderr + log[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert [s["step"] for s in result["steps"]] == ["env", "render", "train", "task2vec", "study"]
    assert all(s["ok"] for s in result["steps"])
    assert result["mode"] == "dry-run (CPU)" and result["steps"][0]["env"]["gl_renderer"]
    assert result["render"]["rows"] and result["train"][-1]["train_synthetic_img_s"] > 0
    assert result["task2vec"][0]["fisher_images_per_s"] > 0
    assert "| study | yes |" in (out / "gpu_check.md").read_text()
