#!/usr/bin/env bash
# Usage: [R=BIN] [O=runs/realm] [MODELS=DIR] scripts/reproduce/realm/span-hits.sh   (null-retreat.sh runs it)
# Reproduces (docs/RESULTS.md, REALM pretraining): span in the top 4 for 31.0% (raw), 31.3% (after phase 1)
# and 28.7–32.3% (after phase 2, four seeds) of the held-out sentences; any passage 73.3%.
# Did phase 2 teach the retriever to find passages that hold the masked span? The
# held-out evaluation of phase 2's configuration (configs/realm/squad-tiny-warm.toml: own
# passage excluded, k = 4 + ∅, the same 300 held-out sentences) run with no training step
# (--stop-after 0) on the models before phase 1, after phase 1, and after each phase-2 seed
# (scripts/reproduce/realm/tiny-warm.sh and tiny-warm-seeds.sh make them). eval.csv's span_hit,
# top_hit and span_in_corpus say for how many sentences a retrieved passage, the first
# one, and any passage hold the span's word pieces. About 2 minutes per model.
set -euo pipefail
R=${R:-target/release/ragl}
O=${O:-runs/realm}
MODELS=${MODELS:-../shared/models}

# eval_at NAME QUERY DOC READER
eval_at() {
  local name=$1
  [ -f "$O/hits-$name/eval.csv" ] && return
  sed -e "s#^query = .*#query = \"$2\"#" -e "s#^doc = .*#doc = \"$3\"#" \
      -e "s#^reader = .*#reader = \"$4\"#" configs/realm/squad-tiny-warm.toml > "$O/hits-$name.toml"
  rm -rf "$O/hits-$name"
  $R pretrain --config "$O/hits-$name.toml" --run "$O/hits-$name" --stop-after 0
}

eval_at raw $MODELS/all-minilm-l6-v2 $MODELS/all-minilm-l6-v2 $MODELS/bert-tiny-mlm
eval_at phase1 $O/tiny-copy/export/query $O/tiny-copy/export/doc $O/tiny-copy/export/reader
runs=(raw phase1)
for s in warm warm-s3 warm-s4 warm-s5; do
  if [ -d "$O/$s/export" ]; then
    eval_at $s $O/$s/export/query $O/$s/export/doc $O/$s/export/reader
    runs+=($s)
  fi
done
{
  echo "model,$(head -1 $O/hits-raw/eval.csv)"
  for r in "${runs[@]}"; do echo "$r,$(tail -1 $O/hits-$r/eval.csv)"; done
} | tee $O/span-hits.csv | column -s, -t
