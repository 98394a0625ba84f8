#!/usr/bin/env bash
# Issue 5 with a reader that can read (configs/realm/squad-minilm-minilm.toml: MiniLM towers
# and a MiniLM reader with a fresh MLM head): the REALM run, the BERT-only MLM baseline on
# the same batches, and the three ablations the issue asks for, each the same config with
# one line changed. The REALM run has the config's time budget; the baseline stops at the
# step the REALM run reached, and each ablation after ABL steps (default 100), so that it
# compares with the REALM run's held-out evaluation at that step. Then the second phase
# of a two-phase run (configs/realm/squad-minilm-warm.toml): REALM proper, starting from
# the no-exclusion ablation's model, and its own BERT-only baseline.
# Usage, from the repository root after `cargo build --release` and scripts/qa/reproduce.sh's
# first stages (runs/squad-open/passages.jsonl):
#   scripts/realm/minilm.sh [MODELS_DIR] [ABL]
set -euo pipefail
MODELS=${1:-../shared/models}
ABL=${2:-100}
R=${RAGL:-target/release/ragl}
O=runs/realm
C=configs/realm/squad-minilm-minilm.toml
mkdir -p $O
[ -f $O/ann.jsonl ] || $R mask annotate --input runs/squad-open/passages.jsonl --output $O/ann.jsonl
[ -f $O/examples.jsonl ] || $R mask make --input $O/ann.jsonl --output $O/examples.jsonl \
    --tokenizer $MODELS/all-minilm-l6-v2 --strategy salient --seed 1
$R pretrain --config $C --run $O/minilm
STEPS=$(tail -1 $O/minilm/metrics.csv | cut -d, -f1)
sed 's/^retrieval = "dense"/retrieval = "none"/' $C > $O/minilm-none.toml
sed 's/^exclude_own = true/exclude_own = false/' $C > $O/minilm-noexcl.toml
sed 's/^null_doc = true/null_doc = false/' $C > $O/minilm-nonull.toml
sed 's/^every = 40/every = 0/' $C > $O/minilm-norefresh.toml
$R pretrain --config $O/minilm-noexcl.toml --run $O/minilm-noexcl --stop-after $ABL
$R pretrain --config configs/realm/squad-minilm-warm.toml --run $O/warm
$R pretrain --config $O/minilm-none.toml --run $O/minilm-none --stop-after $STEPS
W=$(tail -1 $O/warm/metrics.csv | cut -d, -f1)
sed 's/^retrieval = "dense"/retrieval = "none"/' configs/realm/squad-minilm-warm.toml > $O/warm-none.toml
$R pretrain --config $O/warm-none.toml --run $O/warm-none --stop-after $W
for a in norefresh nonull; do
  $R pretrain --config $O/minilm-$a.toml --run $O/minilm-$a --stop-after $ABL
done
# Held-out evaluations of every run, one line per (run, step), and their plots.
{
  echo "run,step,token_acc,null_token_acc,span_acc,loss,utility"
  for r in minilm minilm-none minilm-noexcl warm warm-none minilm-norefresh minilm-nonull; do
    [ -f $O/$r/eval.csv ] || continue
    tail -n +2 $O/$r/eval.csv | awk -F, -v r=$r '{print r","$1","$4","$6","$5","$3","$8}'
  done
} > $O/minilm-compare.csv
for y in token_acc loss utility; do
  $R plot --csv $O/minilm-compare.csv --x step --y $y --group run \
      --title "Held-out $y: REALM (minilm), BERT-only (none) and the ablations" \
      -o $O/minilm-compare-$y.png
done
