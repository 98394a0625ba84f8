#!/usr/bin/env bash
# Usage: [TOWERS=both] [TWIN=1] [DATA_SEED=S] scripts/reproduce/realm/query-only.sh [STEPS] [W] [STOP]
# Reproduces (docs/RESULTS.md, REALM pretraining): with TOWERS=both, held-out utility 0.137 → 0.374 from step
# 250 (order 2) and 0.119 → 0.408 (order 3), loss 0.65 / 0.64 nats below the BERT-only twin, span in the top 4
# 31.3% → 35.7% / 37.0%; without, the query tower alone: utility 0.407 / 0.324 at step 2000.
# Issue 5, sixteenth session (docs/RESULTS.md): phase 2 with the doc tower frozen
# (`train.freeze_doc = true`, as ORQA and RAG train), so that no step re-embeds documents
# and the same CPU time buys about ten times the steps. The index is then exact and is
# never refreshed. From phase 1 (runs/realm/tiny-copy; scripts/reproduce/realm/doc-read.sh makes it
# when missing); held-out evaluations every 250 steps on the same 300 sentences as every
# phase-2 run.
#   scripts/reproduce/realm/query-only.sh [STEPS] [W] [STOP]
# STEPS sets the learning-rate schedule (default 2000); W > 0 adds train.doc_read_loss = W
# (default 0: REALM's objective); STOP ends the run early (default STEPS), and the same
# command with a larger STOP resumes it from its checkpoint. DATA_SEED=S (environment) gives
# another batch order (same held-out sentences) and a run named with -sS. TWIN=1 also trains
# the run's BERT-only twin (no retrieval, from phase 1's BERT-only twin, which it makes when
# missing) on the same batches and steps: $O/$NAME-none. TOWERS=both runs REALM's own
# setting instead, with the same schedule, batches and evaluations: both towers train and
# the refresher re-embeds the corpus every 40 steps (run named both-towers, checkpoints
# every 50 steps, since a step takes about four times as long).
set -euo pipefail
R=${RAGL:-target/release/ragl}
N=${1:-2000}
W=${2:-0}
STOP=${3:-$N}
O=runs/realm
C=configs/realm/squad-tiny-warm.toml
if [ ! -d $O/tiny-copy/export ]; then
  echo "phase 1 is missing: run scripts/reproduce/realm/doc-read.sh first" >&2
  exit 2
fi
NAME=query-only FREEZE=true EVERY=0 SAVE=250
if [ "${TOWERS:-query}" = both ]; then
  NAME=both-towers FREEZE=false EVERY=40 SAVE=50
fi
[ "$W" = 0 ] || NAME=$NAME-docread
DS=${DATA_SEED:-2}
[ "$DS" = 2 ] || NAME=$NAME-s$DS
sed -e "s/^save_every = 50/save_every = $SAVE\nfreeze_doc = $FREEZE\ndoc_read_loss = $W/" \
    -e "s/^every = 40/every = $EVERY/" -e "s/^max_steps = 400/max_steps = $N/" \
    -e "s/^eval_every = 100/eval_every = 250/" -e "s/^max_minutes = 45/max_minutes = 200/" \
    -e "s/^data_seed = 2/data_seed = $DS/" \
    $C > $O/$NAME.toml
$R pretrain --config $O/$NAME.toml --run $O/$NAME --stop-after $STOP --max-minutes 200
# The first and last models evaluated again, one row a held-out sentence, and compared
# sentence by sentence (a run made before eval_examples.csv existed has none of its own).
for at in first last; do
  E=$O/$NAME-eval-$at
  [ -f $E/eval_examples.csv ] && continue
  rm -rf $E
  if [ $at = first ]; then
    sed -e "s#^max_steps = .*#max_steps = 1#" $O/$NAME.toml > $E.toml
  else
    sed -e "s#runs/realm/tiny-copy/export/#$O/$NAME/export/#" -e "s#^max_steps = .*#max_steps = 1#" \
        $O/$NAME.toml > $E.toml
  fi
  $R pretrain --config $E.toml --run $E --stop-after 0
done
python3 "$(dirname "$0")/paired.py" $O/$NAME-eval-first/eval_examples.csv $O/$NAME-eval-last/eval_examples.csv
if [ "${TWIN:-0}" = 1 ]; then
  MODELS=${MODELS:-../shared/models}
  source "$(dirname "$0")/common.sh"
  if [ ! -d $O/tiny-copy-none/export ]; then
    sed 's/^retrieval = "dense"/retrieval = "none"/' $O/tiny-copy.toml > $O/tiny-copy-none.toml
    S1=$(tail -1 $O/tiny-copy/metrics.csv | cut -d, -f1)
    $R pretrain --config $O/tiny-copy-none.toml --run $O/tiny-copy-none --stop-after $S1 --max-minutes 200
  fi
  warm_twin $O/$NAME.toml $O/$NAME-none.toml
  $R pretrain --config $O/$NAME-none.toml --run $O/$NAME-none --stop-after $STOP --max-minutes 200
fi
