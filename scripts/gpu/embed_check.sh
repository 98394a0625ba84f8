#!/usr/bin/env bash
# Usage: scripts/gpu/embed_check.sh [DIR=.gpu]   (on the CUDA machine; docs/RESULTS.md: the GPU rows of embedding)
# GPU check for `ragl embed` (run on a CUDA machine from a prepared folder):
#   DIR/ragl-cuda(.gz)   a release build with --features cuda
#   DIR/minilm-f16/      all-MiniLM-L6-v2 stored as f16 safetensors (loaded as f32)
#   DIR/paragraphs.jsonl the 1,702 SQuAD paragraphs (scripts/bench/squad_jsonl.py)
#   DIR/cpu.npy          the same embeddings computed on the CPU with the same checkpoint
# Build with CUDARC_CUDA_VERSION=<driver CUDA, e.g. 13000> when no toolkit is installed.
# Prints the device check, passages/s on the GPU at batch 32 and 256, and the max |GPU - CPU|.
set -euo pipefail
DIR=${1:-.gpu}
OUT=${OUT:-/tmp/ragl-gpu}
mkdir -p "$OUT"
cd "$DIR"
[ -f ragl-cuda.gz ] && gunzip -f ragl-cuda.gz
chmod +x ragl-cuda
# burn-cuda loads the driver and NVRTC at run time: the system's CUDA (13.0 here) must be
# on the loader's path; do not mix in other NVRTC copies (pip's), they crash the runtime.
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
./ragl-cuda device --device cuda --size 4096
for bs in 32 32 256; do   # the first run includes kernel compilation (JIT); the second is the timing
  ./ragl-cuda embed --device cuda --model minilm-f16 --input paragraphs.jsonl --output "$OUT/gpu-$bs.npy" \
     --max-len 256 --batch-size "$bs" --pooling mean 2>&1 | tail -2
done
python3 - "$OUT/gpu-32.npy" cpu.npy <<'PY'
import sys, numpy as np
g, c = np.load(sys.argv[1]), np.load(sys.argv[2])
cos = (g * c).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(c, axis=1)
print(f"GPU vs CPU: {g.shape}, max |diff| {np.abs(g - c).max():.2e}, min cosine {cos.min():.7f}")
PY
