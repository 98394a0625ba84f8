#!/usr/bin/env bash
# Reproduces (docs/RESULTS.md, REALM pretraining): the first run, 150 steps, token accuracy 2.55% against
# 2.04% ∅ only and 2.38% BERT-only; plots docs/img/realm_{loss,utility,heldout_loss,staleness}.png.
# Issue 5 as measured: pretraining examples from the SQuAD-open passages, the REALM run and
# the BERT-only MLM baseline (retrieval = "none", everything else equal), and a plot of
# their held-out accuracy side by side. Usage: scripts/reproduce/realm/first-hour.sh [MODELS_DIR]
# from the repository root after `cargo build --release` and scripts/reproduce/qa/reproduce.sh's
# first stages (runs/squad-open/passages.jsonl).
set -euo pipefail
MODELS=${1:-../shared/models}
R=${RAGL:-target/release/ragl}
O=runs/realm
source "$(dirname "$0")/common.sh"
prepare_examples
sed 's/^retrieval = "dense"/retrieval = "none"/' configs/realm/squad-minilm-tiny.toml > $O/none.toml
$R pretrain --config configs/realm/squad-minilm-tiny.toml --run $O/dense
# The baseline stops where the time budget stopped the REALM run (same schedule, same batches).
STEPS=$(tail -1 $O/dense/metrics.csv | cut -d, -f1)
$R pretrain --config $O/none.toml --run $O/none$STEPS --stop-after $STEPS
# Held-out loss and accuracy of both runs, one line per run.
{
  echo "run,step,token_acc,null_token_acc,loss"
  for r in dense none$STEPS; do
    tail -n +2 $O/$r/eval.csv | awk -F, -v r=$r '{print r","$1","$4","$6","$3}'
  done
} > $O/compare.csv
$R plot --csv $O/compare.csv --x step --y loss --group run \
    --title "Held-out −log p(y|x): REALM (dense) vs BERT-only MLM (none), same batches" \
    -o $O/compare_loss.png
