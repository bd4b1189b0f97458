#!/usr/bin/env bash
# The GPU check (<= 8 minutes on one GPU): environment, renderer on NVIDIA EGL, ResNet-50 training
# (bf16 + channels_last), feature extraction and 5-NN, Task2Vec, and the smoke study on the GPU.
#
# Here (no GPU needed), once:   .venv/bin/python benchmarks/gpu_bundle.py     # wheels + slim cache -> .gpu_bundle/
#                               (and the GL .debs into .gl/ as the device README says)
# On the lent GPU machine:      bash benchmarks/gpu_check.sh                  # carry .gpu_bundle and .gl
# Anywhere, CPU dry path:       bash benchmarks/gpu_check.sh --dry-run        # the same steps, tiny, on the CPU
# Results: $OUT (or runs/gpu_check/): gpu_check.json, gpu_check.md (table for BENCHMARKS.md), gpu_check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .gl ] && ls .gl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -x .venv/bin/python ]; then PY=${PY:-.venv/bin/python}; else PY=${PY:-python3}; fi
if [ -f .gpu_bundle/wheels/requirements.txt ] && ! "$PY" -c "import moderngl, papermill, trimesh, OpenEXR" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --find-links .gpu_bundle/wheels -r .gpu_bundle/wheels/requirements.txt
  "$PY" -m ipykernel install --sys-prefix --name python3 >/dev/null
fi
if [ -d .gpu_bundle/cache ] && [ -z "${T2S_CACHE:-}" ]; then export T2S_CACHE="$PWD/.gpu_bundle/cache"; fi
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
         /etc/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$f" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="${__EGL_VENDOR_LIBRARY_FILENAMES:-$f}"; break; fi
done
exec "$PY" benchmarks/gpu_check.py "$@"
