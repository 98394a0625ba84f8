#!/usr/bin/env bash
# Usage: scripts/reproduce/knnlm/reproduce.sh   (RAGL=path/to/ragl, OUT=runs/knnlm, DEV_LINES=600, TEST_LINES=all,
#        GENERAL_EVERY=1: the in-domain datastore from every Nth line of the LM's training text)
# The kNN-LM experiments of issue 36 on ../shared text (docs/RESULTS.md, "GPT-2 checkpoints and
# kNN-LM"): ragl's own GPT-2 trained on general English; (a) in-domain, the datastore is the
# LM's own training text, perplexity on held-out text of the same sources; (b) adaptation, a
# datastore of Koran (and medical) English, perplexity on that domain's test text. k, λ and T
# are chosen on dev text and reported on test. Resumable: each step is skipped when its output
# exists.
set -euo pipefail
R=${RAGL:-target/release/ragl}
O=${OUT:-runs/knnlm}
D=$O/data
M=$O/lm
DEV_LINES=${DEV_LINES:-600}
TEST_LINES=${TEST_LINES:-1000000000}
GENERAL_EVERY=${GENERAL_EVERY:-1}
GRID=(--k 8,64,256,1024 --lambda 0.1,0.25,0.4,0.6,0.8 --temperature 1,3,10)

[ -f "$D/general.train.txt" ] || python3 scripts/reproduce/knnlm/corpus.py "$D" --shared ../shared
"$R" lm train --config configs/lm/general.toml --run "$M"

best() { python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["best"]; print(b["k"], b["lambda"], b["temperature"])' "$1"; }

run_domain() { # name datastore-text dev-text test-text
  local name=$1 store=$2 dev=$3 test=$4
  [ -f "$O/ds-$name/manifest.json" ] || "$R" knnlm build --model "$M" --text "$store" --out "$O/ds-$name"
  head -n "$DEV_LINES" "$dev" > "$O/$name.dev.txt"
  head -n "$TEST_LINES" "$test" > "$O/$name.test.txt"
  [ -s "$O/$name.dev.json" ] || "$R" knnlm eval --model "$M" --datastore "$O/ds-$name" \
      --text "$O/$name.dev.txt" "${GRID[@]}" --json > "$O/$name.dev.json"
  read -r k l t < <(best "$O/$name.dev.json")
  [ -s "$O/$name.test.json" ] || "$R" knnlm eval --model "$M" --datastore "$O/ds-$name" \
      --text "$O/$name.test.txt" --k "$k" --lambda "$l" --temperature "$t" --json > "$O/$name.test.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); b=r["best"]; print(sys.argv[2], "test:", r["tokens"], "tokens, LM", round(r["lm"]["perplexity"],2), "-> kNN-LM", round(b["perplexity"],2), "(k %d, λ %s, T %s), %.0f tokens/s" % (b["k"], b["lambda"], b["temperature"], r["tokens_per_second"]))' "$O/$name.test.json" "$name"
}

run_domain koran "$D/koran.train.txt" "$D/koran.dev.txt" "$D/koran.test.txt"
awk -v n="$GENERAL_EVERY" 'NR % n == 1 || n == 1' "$D/general.train.txt" > "$O/general.store.txt"
run_domain general "$O/general.store.txt" "$D/general.dev.txt" "$D/general.test.txt"
