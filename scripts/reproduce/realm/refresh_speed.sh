#!/usr/bin/env bash
# Issue 5: REALM training speed with the background refresher running and without it, on
# the SQuAD-open corpus with the measured config (configs/realm/squad-minilm-tiny.toml),
# refresh every 10 steps instead of 40 so that refreshes overlap a short run. The refresh
# events in metrics.csv (start at the snapshot step, swap when the vectors arrived) show
# the steps that ran while the corpus was being re-embedded. A third run (async1) gives the
# refresher one thread of its own (`[refresh] threads = 1`). Usage, from the repository
# root after scripts/reproduce/qa/reproduce.sh and scripts/reproduce/realm/first-hour.sh's first stages:
#   scripts/reproduce/realm/refresh_speed.sh [STEPS]      (default 30)
set -euo pipefail
R=${RAGL:-target/release/ragl}
N=${1:-30}
O=runs/realm-speed
C=configs/realm/squad-minilm-tiny.toml
mkdir -p $O
common='s/^eval_every = 100/eval_every = 0/; s/^save_every = 50/save_every = 0/; s/^heldout = 300/heldout = 20/'
sed -e "$common" -e 's/^every = 40/every = 10/' $C > $O/async.toml
sed -e "$common" -e 's/^every = 40/every = 10/' -e 's/^batch_size = 32/batch_size = 32\nthreads = 1/' $C > $O/async1.toml
sed -e "$common" -e 's/^every = 40/every = 0/' $C > $O/never.toml
for run in async async1 never; do
  rm -rf $O/$run
  $R pretrain --config $O/$run.toml --run $O/$run --stop-after $N
done
python3 - "$O" "$N" <<'PY'
import csv, sys
o, n = sys.argv[1], int(sys.argv[2])
for run in ["async", "async1", "never"]:
    rows = list(csv.DictReader(open(f"{o}/{run}/metrics.csv")))
    t = [float(r["secs"]) for r in rows]
    steps = len(rows) - 1
    print(f"{run}: steps 2..{len(rows)} in {t[-1]-t[0]:.1f} s = {steps/(t[-1]-t[0]):.3f} steps/s;"
          f" median step {sorted(b-a for a,b in zip(t,t[1:]))[steps//2]:.2f} s")
    pending = None
    for r, (a, b) in zip(rows[1:], zip(t, t[1:])):
        ev = r["refresh"]
        if ev:
            print(f"  step {r['step']}: {ev} (index of step {r['index_step']}, staleness {r['staleness']}), step took {b-a:.2f} s")
PY
