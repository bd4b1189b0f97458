"""One GPU check for a lent GPU host (<= 8 minutes on one H100/H200): every GPU figure BENCHMARKS.md lacks.

Steps (each with its own time budget; a failing step is recorded and the next one still runs):

1. ``env``: GPU, driver, torch/CUDA, the EGL renderer string (must not be llvmpipe in GPU mode);
2. ``render``: ``render_dataset`` throughput on NVIDIA EGL at 64/128/224 px (benchmarks/render.py);
3. ``train``: ResNet-50 at 224 px, bf16 autocast + channels_last, synthetic batches and the real
   pre-training loop; feature extraction; 5-NN over 20k x 50k x 2048-d features (benchmarks/train.py);
4. ``task2vec``: one embedding at 224 px on the GPU (benchmarks/task2vec.py);
5. ``study``: the smoke study end to end with ``device: cuda`` (``t2s study --set device=cuda``).

``--dry-run`` runs the same steps tiny on the CPU (what the test suite exercises here, where no GPU
is lent); the study step then only plans (``t2s study --plan``). Results: ``<out>/gpu_check.json``
and ``<out>/gpu_check.md`` (a table for BENCHMARKS.md), logs in ``<out>/gpu_check.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (name, budget seconds on a GPU) - together well under 8 minutes, leaving room for start-up.
STEPS = (("env", 30), ("render", 120), ("train", 120), ("task2vec", 60), ("study", 150))


#: The smoke study's tasks that the carried bundle holds (benchmarks/gpu_bundle.py): fashion-mnist
#: and animals stay behind to keep the bundle under the device tool's 64 MiB.
STUDY_TASKS = ["--set", "tasks.seen=[mnist,textures,faces]", "--set", "tasks.unseen=[digits]"]


def _args(step: str, dry: bool, workers: int, runs: Path) -> list[str]:
    py = [sys.executable]
    bench = runs / "benchmarks"
    if step == "render":
        sizes = ["32"] if dry else ["64", "128", "224"]
        n, w = ("16", ["1"]) if dry else ("2000", ["1", str(workers)])
        return py + ["benchmarks/render.py", "--sizes", *sizes, "--workers", *w, "--images", n, "--classes", "4",
                     "--modes", "ssaa4", "--render-images", "16" if dry else "400", "--compare", "0", "--quality-sizes",
                     "--json", str(bench / "render.json")]
    if step == "train":
        if dry:
            return py + ["benchmarks/train.py", "--device", "cpu", "--arch", "resnet50", "--img-size", "32", "--batch", "4",
                         "--steps", "1", "--workers", "0", "--images", "32", "--knn-train", "2000", "--knn-test", "500",
                         "--knn-dim", "64", "--skip", "cka", "loader", "real", "--out", str(bench / "train.jsonl")]
        return py + ["benchmarks/train.py", "--device", "cuda", "--arch", "resnet50", "--img-size", "224", "--batch", "256",
                     "--steps", "30", "--amp", "--channels-last", "--workers", str(workers), "--images", "4096",
                     "--knn-dim", "2048", "--out", str(bench / "train.jsonl")]
    if step == "task2vec":
        if dry:
            return py + ["benchmarks/task2vec.py", "--device", "cpu", "--task", "digits", "--img-size", "32", "--images",
                         "200", "--fisher-samples", "64", "--fisher-batch-size", "16", "--skip-train-epoch"]
        return py + ["benchmarks/task2vec.py", "--device", "cuda", "--threads", "0", "--task", "digits", "--img-size",
                     "224", "--images", "1252", "--fisher-samples", "2048"]
    if step == "study":
        base = py + ["-m", "t2s_lib.cli", "study", "--profile", "smoke", "--set", f"device={'cpu' if dry else 'cuda'}",
                     *STUDY_TASKS]
        return base + ["--plan"] if dry else base
    raise ValueError(step)


ENV_SCRIPT = r"""
import json, os, platform, subprocess, sys
info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
try:
    import torch
    info.update(torch=torch.__version__, cuda=torch.version.cuda, gpus=torch.cuda.device_count(),
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
except Exception as exc:
    info["torch_error"] = repr(exc)
try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20)
    info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
except Exception as exc:
    info["nvidia_smi"] = repr(exc)
from t2s_lib.render.gl import create_context
ctx = create_context()
info["gl_renderer"], info["gl_version"] = ctx.info["GL_RENDERER"], ctx.info["GL_VERSION"]
print("GPU_CHECK_ENV " + json.dumps(info))
if os.environ.get("T2S_GPU_CHECK_DRY") != "1" and "llvmpipe" in info["gl_renderer"].lower():
    raise SystemExit("EGL resolved to Mesa llvmpipe, not the GPU: install the NVIDIA driver's EGL or set "
                     "__EGL_VENDOR_LIBRARY_FILENAMES to its 10_nvidia.json")
"""


def run_step(step: str, budget: int, dry: bool, workers: int, runs: Path, env: dict[str, str], log) -> dict:
    cmd = [sys.executable, "-c", ENV_SCRIPT] if step == "env" else _args(step, dry, workers, runs)
    t0 = time.perf_counter()
    log.write(f"\n===== {step}: {' '.join(cmd[:6])} ...\n")
    log.flush()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget * (4 if dry else 1))
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc = "timeout"
    log.write(out)
    log.flush()
    record = {"step": step, "ok": rc == 0, "returncode": rc, "seconds": round(time.perf_counter() - t0, 1)}
    for line in out.splitlines():
        if line.startswith("GPU_CHECK_ENV "):
            record["env"] = json.loads(line.split(" ", 1)[1])
    return record


def collect(runs: Path, records: list[dict]) -> dict:
    """Merge the benchmark scripts' own JSON outputs into the records."""
    bench = runs / "benchmarks"
    extra: dict = {}
    if (bench / "render.json").is_file():
        extra["render"] = json.loads((bench / "render.json").read_text())
    for f in sorted(bench.glob("train*.jsonl")):
        extra["train"] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    for f in sorted(bench.glob("task2vec_*.json")):
        extra.setdefault("task2vec", []).append(json.loads(f.read_text()))
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": platform.node(), "steps": records, **extra}


def markdown(result: dict) -> str:
    lines = ["| step | ok | seconds | figures |", "|---|---|---|---|"]
    for r in result["steps"]:
        figs = ""
        if r["step"] == "env" and "env" in r:
            e = r["env"]
            figs = f"{e.get('gpu')} / {e.get('gl_renderer')} / torch {e.get('torch')} CUDA {e.get('cuda')}"
        elif r["step"] == "render" and "render" in result:
            figs = "; ".join(f"{x['size']}px w{x['workers']}: {x['dataset_img_s']:.0f} img/s" for x in result["render"]["rows"]
                             if "dataset_img_s" in x)
        elif r["step"] == "train" and result.get("train"):
            t = result["train"][-1]
            figs = (f"train {t.get('train_synthetic_img_s')} img/s (synthetic), {t.get('train_real_loader_img_s')} (loader); "
                    f"features {t.get('features_img_s')} img/s; 5-NN {t.get('knn_shape')} {t.get('knn_seconds')} s")
        elif r["step"] == "task2vec" and result.get("task2vec"):
            t = result["task2vec"][-1]
            figs = f"{t['img_size']} px: Fisher {t['fisher_images_per_s']} img/s, wall {t['wall_s']} s"
        lines.append(f"| {r['step']} | {'yes' if r['ok'] else 'NO (' + str(r['returncode']) + ')'} | {r['seconds']} | {figs} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="the same steps, tiny, on the CPU")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu_check"))
    ap.add_argument("--only", nargs="*", default=None, help="run only these steps")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="t2s-gpu-check-"))
    env = dict(os.environ, T2S_RUNS=str(runs), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    if args.dry_run:
        env["T2S_GPU_CHECK_DRY"] = "1"
    workers = min(8, os.cpu_count() or 1)
    records = []
    with open(out / "gpu_check.log", "w") as log:
        for step, budget in STEPS:
            if args.only and step not in args.only:
                continue
            rec = run_step(step, budget, args.dry_run, workers, runs, env, log)
            records.append(rec)
            print(f"[gpu_check] {step}: {'ok' if rec['ok'] else 'FAILED'} in {rec['seconds']} s", flush=True)
    result = collect(runs, records)
    result["mode"] = "dry-run (CPU)" if args.dry_run else "gpu"
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    (out / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
