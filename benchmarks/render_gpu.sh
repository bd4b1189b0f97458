#!/usr/bin/env bash
# Rendering throughput on a GPU host (target: >= 5000 img/s at 128 px on one H100).
# Same code as on CPU: moderngl over EGL, here resolved to NVIDIA's EGL driver instead of Mesa.
# Usage: bash benchmarks/render_gpu.sh [DEVICE_INDEX] [IMAGES]
#   DEVICE_INDEX: EGL device (GPU) to use (default 0, exported as T2S_EGL_DEVICE)
#   DRY=1: a CPU dry run of the script itself (llvmpipe allowed, 64 px, 200 images, no GPU numbers)
# Needs: the NVIDIA driver's EGL (libEGL_nvidia, shipped with the driver), the project venv,
# and the assets (`t2s assets fetch`, run below if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV="${1:-0}"
IMAGES="${2:-20000}"
PY="${PYTHON:-.venv/bin/python}"
DRY="${DRY:-0}"
export T2S_EGL_DEVICE="$DEV"
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
# Prefer NVIDIA's EGL vendor library when glvnd offers several (Mesa would silently pick llvmpipe).
for f in /usr/share/glvnd/egl_vendor.d/10_nvidia.json /etc/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$f" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$f"; break; fi
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
DRY="$DRY" "$PY" - <<'PY'
import os
from t2s_lib.render.gl import create_context
ctx = create_context(torch_process=False)
name = ctx.info["GL_RENDERER"]
print("GL renderer:", name, "| GL", ctx.info["GL_VERSION"])
if "llvmpipe" in name.lower() and os.environ.get("DRY") != "1":
    raise SystemExit("EGL resolved to Mesa llvmpipe, not the GPU: install the NVIDIA driver's EGL "
                     "(libnvidia-gl / libEGL_nvidia) or set __EGL_VENDOR_LIBRARY_FILENAMES")
PY
"$PY" -m t2s_lib.cli assets fetch
NCPU=$(nproc)
W2=$(( NCPU / 2 > 1 ? NCPU / 2 : 1 ))
# One EGL context per worker process; on a GPU the CPU side (Python, JPEG encoding) is the limit,
# so throughput scales with worker processes until the GPU saturates.
if [ "$DRY" = "1" ]; then
  "$PY" benchmarks/render.py --sizes 64 --workers 2 --images 200 --classes 10 --render-images 40 \
    --compare 0 --json "runs/render_gpu_dry.json"
  exit 0
fi
"$PY" benchmarks/render.py --sizes 64 128 224 --workers 1 "$W2" "$NCPU" --images "$IMAGES" \
  --compare 0 --json "runs/render_gpu_benchmark.json"
