#!/usr/bin/env bash
# Task2Vec speed on a GPU host (not run in the session that wrote it: no GPU there).
# Usage: bash benchmarks/task2vec_gpu.sh   (after `make install data`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))"
# the paper's scale: 224 px, 10 000 images, 10 000 Fisher draws in batches of 64
$PY benchmarks/task2vec.py --device cuda --threads 0 --img-size 224 --images 10000 --fisher-samples 10000
# the small-study scale, for comparison with the CPU figures
$PY benchmarks/task2vec.py --device cuda --threads 0 --img-size 32 --images 10000 --fisher-samples 10000
