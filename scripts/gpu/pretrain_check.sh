#!/usr/bin/env bash
# Usage: scripts/gpu/pretrain_check.sh [DIR] [STEPS] [CPU_STEPS] [MINUTES]   (docs/RESULTS.md: REALM speed, 4.59 steps/s on an H200)
# GPU check for `ragl pretrain` (issue 5), run on a CUDA machine from a prepared folder:
#   DIR/ragl-cuda         a release build with --features cuda (CUDARC_CUDA_VERSION=<driver
#                         CUDA, e.g. 13000>, when no toolkit is installed where it is built)
#   DIR/minilm-f16/       all-MiniLM-L6-v2 with its weights stored as f16 (loaded as f32)
#   DIR/tiny-f16/         bert-tiny-mlm likewise
#   DIR/passages.jsonl    runs/squad-open/passages.jsonl
#   DIR/examples.jsonl    runs/realm/examples.jsonl (scripts/reproduce/realm/common.sh prepare_examples)
# The measured config (configs/realm/squad-minilm-tiny.toml: MiniLM towers, bert-tiny reader,
# k = 4 + the null document, batch 4) as in scripts/reproduce/realm/refresh_speed.sh: a refresh every
# 10 steps in the background (async) or none (never), 20 held-out examples, evaluated at
# the end only. Each variant runs on the GPU for STEPS steps and on this machine's CPU cores
# for CPU_STEPS steps (without refresh only, unless CPU_VARIANTS="async never"), every run
# capped at MINUTES. Prints, per run, steps/s and the median
# step over the second half of the run (the first steps on the GPU compile kernels), the
# refresh events with the step time while each was in flight, and the first steps' losses
# on both devices (same weights, same batches: they differ by TF32 rounding only, unless a
# near-tie in the initial index is retrieved differently).
# Any of these may be stored as FILE.xz.
#   scripts/gpu/pretrain_check.sh [DIR] [STEPS] [CPU_STEPS] [MINUTES]
set -euo pipefail
C=$PWD/configs/realm/squad-minilm-tiny.toml
DIR=$(cd "${1:-.gpu}" && pwd)
N=${2:-60}
NC=${3:-12}
MIN=${4:-2}
OUT=${OUT:-/tmp/ragl-gpu}
mkdir -p "$OUT"
W=$(mktemp -d)
source "$(dirname "$0")/common.sh"
unpack "$DIR"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "CPU cores: $(nproc)"
DEVICES=${DEVICES:-cuda cpu}   # DEVICES=cpu tries the script on a machine without a GPU
case " $DEVICES " in *" cuda "*) ./ragl-cuda device --device cuda --size 4096 ;; esac
base="$DATA; $MODELS; s/^eval_every = 100/eval_every = 0/; s/^save_every = 50/save_every = 0/; s/^heldout = 300/heldout = 20/"
sed -e "$base" -e 's/^every = 40/every = 10/' "$C" > "$W/async.toml"
sed -e "$base" -e 's/^every = 40/every = 0/' "$C" > "$W/never.toml"
run() { # NAME DEVICE CONFIG STEPS
  local t0=$SECONDS
  ./ragl-cuda pretrain --device "$2" --config "$W/$3.toml" --run "$W/$1" --stop-after "$4" \
      --max-minutes "$MIN" > "$W/$1.log" 2>&1 || { echo "$1 failed:"; tail -20 "$W/$1.log"; }
  echo "$1: process $((SECONDS - t0)) s; $(tail -1 "$W/$1.log" | tr -d '\r')"
}
for dev in $DEVICES; do
  steps=$N variants="async never"
  [ "$dev" = cpu ] && steps=$NC variants=${CPU_VARIANTS:-never}
  for v in $variants; do run "$dev-$v" "$dev" "$v" "$steps"; done
done
(cd "$W" && tar -czf "$OUT/pretrain_runs.tar.gz" *.toml *.log */*.csv)
python3 - "$W" <<'PY'
import csv, os, sys, statistics as st
w = sys.argv[1]
rows = {}
for run in ["cuda-async", "cuda-never", "cpu-async", "cpu-never"]:
    p = f"{w}/{run}/metrics.csv"
    if not os.path.exists(p):
        print(f"{run}: no metrics"); continue
    r = list(csv.DictReader(open(p)))
    rows[run] = r
    t = [float(x["secs"]) for x in r]
    h = len(t) // 2
    d = [b - a for a, b in zip(t, t[1:])]
    if len(t) < 4:
        print(f"{run}: only {len(t)} steps"); continue
    print(f"{run}: {len(t)} steps; steps {h+1}..{len(t)}: {(len(t)-1-h)/(t[-1]-t[h]):.3f} steps/s, "
          f"median step {st.median(d[h:]):.3f} s; first step {t[0]:.1f} s after start")
    inflight = False
    for x, dt in zip(r[1:], d):
        ev = x["refresh"]
        if ev:
            print(f"   step {x['step']}: {ev} (index of step {x['index_step']}, staleness {x['staleness']}), step took {dt:.3f} s")
for dev in ["cuda", "cpu"]:
    r = rows.get(f"{dev}-never")
    if r:
        print(f"{dev} losses, steps 1-6: " + " ".join(f"{float(x['loss']):.4f}" for x in r[:6]))
PY
