#!/usr/bin/env bash
# Usage: scripts/gpu/realm_batch.sh [DIR] [DEVICE] [P1] [MINUTES] [BATCHES]
# Reproduces (docs/RESULTS.md, REALM pretraining): batch 4 / 16 / 32 on an H200, held-out loss −0.43 / −0.81 /
# −0.79 nats, utility 0.187 / 0.264 / 0.250 against 0.225 at step 0.
# Issue 5 on a GPU: does phase 2's retrieval utility rise with larger batches? The two
# phases of scripts/reproduce/realm/tiny-warm.sh from the folder scripts/gpu/prepare.sh makes
# (f16-stored MiniLM and bert-tiny): phase 1, the trivial task (k = 1, own passage kept,
# batch 8) for P1 steps (327, as the 20-minute CPU run); then phase 2,
# configs/realm/squad-tiny-warm.toml from phase 1's export, once per batch size in
# BATCHES, all at the same time on the one device (small batches leave a GPU mostly idle),
# each for the config's 400 steps or MINUTES. Held-out evaluations every 100 steps on
# the same 300 sentences. Prints each run's held-out evaluations and its 50-step means of
# training utility and p(∅|x). STEPS=N and EVAL_EVERY=N (environment) replace the phase-2
# config's 400 steps and its evaluation every 100; P2_SED adds sed expressions of its own
# (P2_SED='s/^save_every = 50/save_every = 50\nfreeze_doc = true/; s/^every = 40/every = 0/'
# trains the query tower alone, as scripts/reproduce/realm/query-only.sh does).
#   scripts/gpu/realm_batch.sh [DIR] [DEVICE] [P1] [MINUTES] [BATCHES]
set -euo pipefail
C1=$PWD/configs/realm/squad-minilm-tiny.toml
C2=$PWD/configs/realm/squad-tiny-warm.toml
DIR=$(cd "${1:-.gpu}" && pwd)
DEV=${2:-cuda}
P1=${3:-327}
MIN=${4:-3.5}
BATCHES=${5:-4 32}
OUT=${OUT:-/tmp/ragl-gpu}
mkdir -p "$OUT"
W=$(mktemp -d)
source "$(dirname "$0")/common.sh"
unpack "$DIR"
sed -e "$DATA" -e "$MODELS" \
    -e 's/^k = 4/k = 1/; s/^exclude_own = true/exclude_own = false/; s/^batch = 4/batch = 8/' \
    -e 's/^eval_every = 100/eval_every = 0/; s/^save_every = 50/save_every = 0/' \
    "$C1" > "$W/p1.toml"
t0=$SECONDS
./ragl-cuda pretrain --device "$DEV" --config "$W/p1.toml" --run "$W/p1" --stop-after "$P1" \
    --max-minutes "$MIN" > "$W/p1.log" 2>&1 || { tail -20 "$W/p1.log"; exit 1; }
echo "phase 1: $(($(wc -l < "$W/p1/metrics.csv") - 1)) steps, process $((SECONDS - t0)) s"
for b in $BATCHES; do
  sed -e "$DATA" -e "s#runs/realm/tiny-copy/#$W/p1/#" -e "s/^batch = 4/batch = $b/" \
      -e "s/^max_steps = 400/max_steps = ${STEPS:-400}/" \
      -e "s/^eval_every = 100/eval_every = ${EVAL_EVERY:-100}/" -e "${P2_SED:-}" \
      -e 's/^save_every = 50/save_every = 0/' "$C2" > "$W/b$b.toml"
  ./ragl-cuda pretrain --device "$DEV" --config "$W/b$b.toml" --run "$W/b$b" \
      --max-minutes "$MIN" > "$W/b$b.log" 2>&1 &
done
wait || true
echo "phase 2: process $((SECONDS - t0)) s since phase 1 began"
(cd "$W" && tar -czf "$OUT/realm_batch.tar.gz" *.toml *.log */*.csv)
python3 - "$W" $BATCHES <<'PY'
import csv, os, sys, statistics as st
w = sys.argv[1]
for b in sys.argv[2:]:
    m, e = f"{w}/b{b}/metrics.csv", f"{w}/b{b}/eval.csv"
    if not os.path.exists(e):
        print(f"batch {b}: no eval.csv; log tail:", open(f"{w}/b{b}.log").read()[-1500:]); continue
    r = list(csv.DictReader(open(m)))
    t = [float(x["secs"]) for x in r]
    print(f"batch {b}: {len(r)} steps, {(len(t)-1)/max(t[-1]-t[0], 1e-9):.2f} steps/s")
    for x in csv.DictReader(open(e)):
        print(f"  held-out step {x['step']}: loss {float(x['loss']):.3f} acc {x['token_acc']} (null {x['null_token_acc']})"
              f" utility {float(x['utility']):.3f} ru_top {float(x['ru_top']):.3f} span_hit {x['span_hit']} p_null {x['p_null']}")
    for i in range(0, len(r), 50):
        c = r[i:i + 50]
        print(f"  train steps {c[0]['step']}-{c[-1]['step']}: utility {st.mean(float(x['utility']) for x in c):.3f}"
              f" p_null {st.mean(float(x['p_null']) for x in c):.3f} span_hit {st.mean(float(x['span_hit']) for x in c):.1f}"
              f" loss {st.mean(float(x['loss']) for x in c):.3f}")
PY
