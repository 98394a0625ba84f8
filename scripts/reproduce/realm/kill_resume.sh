#!/usr/bin/env bash
# Issue 5's crash test on real data: REALM pretraining on the SQuAD-open corpus (the
# measured config, with the refresh in place every 5 steps so that the run is reproducible,
# a checkpoint every 5 steps), run uninterrupted for N steps; then again, killed with
# kill -9 at step K, and resumed by rerunning the same command. The per-step metrics of the
# two runs must be equal: loss, accuracy, utility, the index step in use, the stale gap.
# Usage, from the repository root (after scripts/reproduce/realm/first-hour.sh's first stages):
#   scripts/reproduce/realm/kill_resume.sh [N] [K]         (default 12 8)
set -euo pipefail
R=${RAGL:-target/release/ragl}
N=${1:-12} K=${2:-8}
O=runs/realm-kill
mkdir -p $O
sed -e 's/^every = 40/every = 5/; s/^mode = "async"/mode = "sync"/; s/^save_every = 50/save_every = 5/' \
    -e 's/^eval_every = 100/eval_every = 0/; s/^heldout = 300/heldout = 20/' \
    configs/realm/squad-minilm-tiny.toml > $O/sync.toml
rm -rf $O/straight $O/killed
$R pretrain --config $O/sync.toml --run $O/straight --stop-after $N
# The binary itself in the background, so that kill -9 reaches it.
$R pretrain --config $O/sync.toml --run $O/killed --stop-after $N & pid=$!
until [ -f $O/killed/metrics.csv ] && [ "$(tail -1 $O/killed/metrics.csv | cut -d, -f1)" = "$K" ]; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null || true
echo "killed after step $(tail -1 $O/killed/metrics.csv | cut -d, -f1); checkpoint at step $(cat $O/killed/checkpoint/manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["step"])' 2>/dev/null || echo '?')"
$R pretrain --config $O/sync.toml --run $O/killed --stop-after $N
python3 - $O <<'PY'
import csv, sys
o = sys.argv[1]
cols = ["step", "loss", "token_acc", "utility", "index_step", "staleness", "stale_gap"]
a = [[r[c] for c in cols] for r in csv.DictReader(open(f"{o}/straight/metrics.csv"))]
b = [[r[c] for c in cols] for r in csv.DictReader(open(f"{o}/killed/metrics.csv"))]
print(f"{len(a)} and {len(b)} steps; columns {cols}")
for x, y in zip(a, b):
    print(("same " if x == y else "DIFF ") + ",".join(x) + ("" if x == y else "  vs  " + ",".join(y)))
sys.exit(0 if a == b else 1)
PY
