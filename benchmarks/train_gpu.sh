#!/usr/bin/env bash
# GPU benchmark: ResNet-50 at 224 px, bf16 autocast, channels_last (target on one H100: >= 2500 img/s
# training; the real data pipeline must deliver more than that). Run from the project root:
#   bash benchmarks/train_gpu.sh [WORKERS]
# 1) model-bound: synthetic in-memory batches; 2) real loader: generated JPEG/PNG set through the full
# pre-training loop (RandAugment + mixup/cutmix) with WORKERS loader processes; 3) features, 5-NN
# over 50k x 20k 2048-d features, CKA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORKERS=${1:-$(( $(nproc) > 16 ? 16 : $(nproc) ))}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# model-bound ceiling (no loader), then the real pipeline
$PY benchmarks/train.py --device cuda --arch resnet50 --img-size 224 --batch 256 --steps 30 --amp --channels-last \
    --workers "$WORKERS" --images 8192 --knn-dim 2048 --out runs/benchmarks/train_gpu.jsonl
