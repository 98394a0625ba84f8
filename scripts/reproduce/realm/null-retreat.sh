#!/usr/bin/env bash
# Usage: scripts/reproduce/realm/null-retreat.sh   (after tiny-warm.sh and tiny-warm-seeds.sh)
# Reproduces (docs/RESULTS.md, REALM pretraining): no ∅ to 391 steps (utility −0.03 → 0.30), towers' lr 1e-4
# (utility 0.051 at 200), towers frozen (0.137 at 391), span_elsewhere (0.614 → 0.338).
# Issue 5: why retrieval utility does not rise in phase 2 (docs/RESULTS.md, thirteenth
# session). Run after scripts/reproduce/realm/tiny-warm.sh (and tiny-warm-seeds.sh for all seeds):
# - where the masked spans are, for the models before phase 1, after it and after each
#   phase-2 seed (scripts/reproduce/realm/span-hits.sh);
# - the no-∅ ablation of tiny-warm.sh, stopped at 200 steps there, continued to phase 2's
#   391 (it resumes from its checkpoint);
# - phase 2 with the towers' learning rate 1e-4 instead of 3e-5, stopped at 200 steps as
#   the ablations of tiny-warm.sh are (20 minutes);
# - phase 2 with the towers frozen (lr = 0; the index then never goes stale, so no
#   refresh), the reader alone trained, 391 steps (25 minutes);
# - phase 2 on the examples whose span another passage holds (45 minutes).
set -euo pipefail
R=${RAGL:-target/release/ragl}
O=runs/realm
"$(dirname "$0")/span-hits.sh"
$R pretrain --config $O/warm-nonull.toml --run $O/warm-nonull --stop-after 391
sed -e 's/^lr = 3e-5/lr = 1e-4/' configs/realm/squad-tiny-warm.toml > $O/warm-tlr1e-4.toml
$R pretrain --config $O/warm-tlr1e-4.toml --run $O/warm-tlr1e-4 --stop-after 200
sed -e 's/^lr = 3e-5/lr = 0.0/' -e 's/^every = 40/every = 0/' configs/realm/squad-tiny-warm.toml > $O/warm-frozen.toml
$R pretrain --config $O/warm-frozen.toml --run $O/warm-frozen --stop-after 391
# Phase 2 on the examples whose masked span is in another passage (data.span_elsewhere:
# REALM's premise), 391 steps (45 minutes). Its held-out set is drawn from those examples.
sed -e 's/^heldout = 300/heldout = 300\nspan_elsewhere = true/' configs/realm/squad-tiny-warm.toml > $O/warm-elsewhere.toml
$R pretrain --config $O/warm-elsewhere.toml --run $O/warm-elsewhere --stop-after 391
# Held-out utility and p(∅|x) of phase 2 and these variants, side by side.
{
  echo "run,step,utility,p_null"
  for r in warm warm-s3 warm-s4 warm-s5 warm-tlr1e-4 warm-nonull warm-frozen warm-elsewhere; do
    awk -F, -v r=$r 'NR==1{for(i=1;i<=NF;i++) c[$i]=i; next} {print r","$1","$c["utility"]","(c["p_null"]?$c["p_null"]:"")}' $O/$r/eval.csv
  done
} > $O/null-retreat.csv
$R plot --csv $O/null-retreat.csv --x step --y utility --group run \
    --title "Held-out utility log p(y|x) − log p(y|∅,x), phase 2 and variants" -o $O/null-retreat-utility.png
