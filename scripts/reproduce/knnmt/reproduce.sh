#!/usr/bin/env bash
# Usage: scripts/reproduce/knnmt/reproduce.sh MODEL DATA OUT   (docs/RESULTS.md: kNN-MT, NMT base BLEU)
# Every issue-7 number after the base model is trained, in priority order, so that an
# interrupted session keeps what finished:
#   1. domain adaptation (Koran, EMEA, KDE4) and in-domain Multi30k: domains.sh
#   2. the BLEU vs datastore-size curve on Koran: size_curve.sh, with the Koran setting
#      tuned in step 1 (the 100% point reuses the step-1 datastore)
#   3. base BLEU on newstest2019 and newstest2018
#   4. the speed benchmark (scripts/reproduce/knnmt/speed.sh; run it with the machine otherwise idle)
#
#   scripts/reproduce/knnmt/reproduce.sh MODEL DATA OUT
#     e.g. scripts/reproduce/knnmt/reproduce.sh runs/mt-base ../shared/data/mt runs/knnmt
set -euo pipefail
MODEL=$1 DATA=$2 OUT=$3
RAGL=${RAGL:-target/release/ragl}
export RAGL
here=$(dirname "$0")
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 ))s: $*"; }

# As measured in docs/RESULTS.md: Koran tuned on 300 dev sentences over T ∈ {10, 100}; the
# others on 200 with T = 10 (T = 100 never won).
stamp "domains"
"$here/domains.sh" "$MODEL" "$DATA" "$OUT" koran
TUNE_N=200 TEMPS=10 "$here/domains.sh" "$MODEL" "$DATA" "$OUT" emea kde4 multi30k

stamp "size curve"
read -r k lambda temp < <(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["best"]; print(b["k"], b["lambda"], b["temperature"])' "$OUT/koran/sweep.json")
mkdir -p "$OUT/size"
ln -sfn ../koran/datastore "$OUT/size/koran-1.0"   # the 100% point is the domain datastore
LIMIT=1000 "$here/size_curve.sh" "$MODEL" "$DATA" "$OUT/size" "$k" "$lambda" "$temp"

for year in 2019 2018; do
  case $year in 2019) f=newstest2019-deen ;; 2018) f=newstest2018-ende ;; esac
  stamp "newstest$year"
  "$RAGL" mt translate --model "$MODEL" -i "$DATA/newstest/$f.de" -o "$OUT/$f.hyp"
  "$RAGL" eval bleu "$DATA/newstest/$f.en" -i "$OUT/$f.hyp" | tee "$OUT/$f.bleu"
done
stamp "speed"
"$here/speed.sh" "$MODEL" "$OUT/koran/datastore" "$DATA/multidomain/koran/dev.de" "$DATA/multidomain/koran/dev.en" 200 3 "$k" "$lambda" "$temp"
stamp "done"
