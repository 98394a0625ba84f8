#!/usr/bin/env bash
# Usage: scripts/gpu/prepare.sh [DIR] [MODELS_DIR] [PYTHON]
# Prepares the folder that scripts/gpu/*_check.sh read on a CUDA machine, small enough for
# a 64 MiB transfer: the stripped CUDA build, MiniLM and bert-tiny with f16 weights, the
# SQuAD-open passages and pretraining examples, large files xz-compressed (the check
# scripts unpack them). Needs python3 with numpy and safetensors (a throwaway venv), the
# release build (CUDARC_CUDA_VERSION=13000 cargo build --release -p ragl --features cuda;
# name the GPU driver's CUDA version when no toolkit is installed here), and
# runs/squad-open/passages.jsonl and runs/realm/examples.jsonl (scripts/reproduce/realm/common.sh).
#   scripts/gpu/prepare.sh [DIR] [MODELS_DIR] [PYTHON]
# Keep DIR out of git (echo /.gpu/ >> .git/info/exclude) and carry it with the call.
set -euo pipefail
DIR=${1:-.gpu}
MODELS=${2:-../shared/models}
PY=${3:-python3}
mkdir -p "$DIR"
"$PY" - "$MODELS" "$DIR" <<'PY'
import os, shutil, sys
import numpy as np
from safetensors.numpy import load_file, save_file
models, out = sys.argv[1:]
for src, dst in [("all-minilm-l6-v2", "minilm-f16"), ("bert-tiny-mlm", "tiny-f16")]:
    src, dst = f"{models}/{src}", f"{out}/{dst}"
    os.makedirs(dst, exist_ok=True)
    t = load_file(f"{src}/model.safetensors")
    save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in t.items()},
              f"{dst}/model.safetensors")
    for f in os.listdir(src):
        if os.path.isfile(f"{src}/{f}") and f != "model.safetensors":
            shutil.copy(f"{src}/{f}", dst)
PY
strip -o "$DIR/ragl-cuda" target/release/ragl
cp runs/squad-open/passages.jsonl runs/realm/examples.jsonl "$DIR/"
xz -T2 -6 -f "$DIR/ragl-cuda" "$DIR"/*.jsonl "$DIR"/*/model.safetensors
du -sh "$DIR"
