#!/usr/bin/env bash
# Usage: scripts/reproduce/knnmt/speed.sh MODEL DATASTORE SRC REF [N] [REPS] [K] [LAMBDA] [TEMP]   (docs/RESULTS.md: kNN-MT speed)
# kNN-MT decoding speed against the base model (issue 7): the same sentences, the same beam,
# both in one `knnmt eval` process, repeated; prints each run's ratios and their medians.
# Run it on an otherwise idle machine.
#
#   scripts/reproduce/knnmt/speed.sh MODEL DATASTORE SRC REF [N=200] [REPS=3] [K=8] [LAMBDA=0.7] [TEMP=10]
set -euo pipefail
MODEL=$1 DS=$2 SRC=$3 REF=$4 N=${5:-200} REPS=${6:-3} K=${7:-8} LAMBDA=${8:-0.7} TEMP=${9:-10}
RAGL=${RAGL:-target/release/ragl}
tmp=$(mktemp -d)
for r in $(seq "$REPS"); do
  "$RAGL" knnmt eval --model "$MODEL" --datastore "$DS" -i "$SRC" --ref "$REF" --limit "$N" \
    --k "$K" --lambda "$LAMBDA" --temperature "$TEMP" --report "$tmp/$r.json" > /dev/null 2>&1
done
python3 - "$tmp" "$REPS" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, n + 1):
    j = json.load(open(f"{d}/{r}.json"))
    b, k = j["base"], j["best"]
    s = j["settings"][0]["search_secs"]
    rows.append((k["secs"] / b["secs"], (k["secs"] / k["rows"]) / (b["secs"] / b["rows"]), s / k["secs"], b["secs"], k["secs"], b["bleu"], k["bleu"]))
    print(f"run {r}: base {b['secs']:.1f}s ({b['rows']} rows, BLEU {b['bleu']:.2f}), kNN-MT {k['secs']:.1f}s ({k['rows']} rows, BLEU {k['bleu']:.2f}, search {s:.1f}s): "
          f"time ratio {rows[-1][0]:.3f}, per decoder row {rows[-1][1]:.3f}")
med = lambda i: statistics.median(r[i] for r in rows)
print(f"median of {n}: time ratio {med(0):.3f}×, per decoder row {med(1):.3f}×, search share {100 * med(2):.0f}%")
PY
