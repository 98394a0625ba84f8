#!/usr/bin/env bash
# Usage: scripts/reproduce/knnmt/size_curve.sh MODEL DATA OUT K LAMBDA TEMP [FULL_JSON]   (docs/RESULTS.md: datastore size)
# BLEU against datastore size on Koran (issue 7, the paper's figure): datastores from the
# first 10%, 25%, 50% and 100% of multidomain/koran/train, each evaluated on the Koran test
# set with fixed k, λ, T (tune them first with domains.sh; pass them here), then plotted.
#
#   scripts/reproduce/knnmt/size_curve.sh MODEL DATA OUT K LAMBDA TEMP [FULL_JSON]
#
# The base model is decoded once (with the 10% point). FULL_JSON, if given, is the
# `knnmt eval --report` of the 100% datastore with the same k, λ, T (domains.sh writes it as
# OUT/koran/test.json), and is reused instead of decoding again. LIMIT=N (environment)
# evaluates the first N test sentences only (then FULL_JSON is not reused).
set -euo pipefail
MODEL=$1 DATA=$2 OUT=$3 K=$4 LAMBDA=$5 TEMP=$6 FULL=${7:-}
LIMIT=${LIMIT:-}
limit=(); [ -n "$LIMIT" ] && { limit=(--limit "$LIMIT"); FULL=; }
RAGL=${RAGL:-target/release/ragl}
K_DIR=$DATA/multidomain/koran
mkdir -p "$OUT"
row() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%s,%d,%.2f,%.2f" % (sys.argv[2], j["datastore_keys"], j["best"]["bleu"], float(sys.argv[3])))' "$@"; }
echo "fraction,keys,bleu,base_bleu" > "$OUT/size_curve.csv"
base=""
for f in 0.1 0.25 0.5 1.0; do
  ds=$OUT/koran-$f
  if [ "$f" = 1.0 ] && [ -n "$FULL" ]; then
    row "$FULL" "$f" "$base" >> "$OUT/size_curve.csv"
    continue
  fi
  [ -f "$ds/manifest.json" ] || "$RAGL" knnmt build --model "$MODEL" --src "$K_DIR/train.de" --tgt "$K_DIR/train.en" --out "$ds" --fraction "$f"
  extra=(); [ -n "$base" ] && extra=(--no-base)
  # A finished point is kept (rerunning the script resumes the curve).
  [ -f "$ds/test.json" ] || "$RAGL" knnmt eval --model "$MODEL" --datastore "$ds" -i "$K_DIR/test.de" --ref "$K_DIR/test.en" \
    --k "$K" --lambda "$LAMBDA" --temperature "$TEMP" --report "$ds/test.json" "${extra[@]}" "${limit[@]}"
  [ -n "$base" ] || base=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"]["bleu"])' "$ds/test.json")
  row "$ds/test.json" "$f" "$base" >> "$OUT/size_curve.csv"
done
"$RAGL" plot --csv "$OUT/size_curve.csv" --x keys --y bleu,base_bleu --log-x \
  --title "Koran test${LIMIT:+ (first $LIMIT)} BLEU vs datastore size (k $K, λ $LAMBDA, T $TEMP)" -o "$OUT/size_curve.png"
cat "$OUT/size_curve.csv"
