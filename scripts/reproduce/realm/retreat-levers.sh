#!/usr/bin/env bash
# Usage: scripts/reproduce/realm/retreat-levers.sh   (after tiny-warm.sh)
# Reproduces (docs/RESULTS.md, REALM pretraining): per-token marginal (utility 0.171 → 0.070), oracle warm-up
# (0.202 → 0.147, span in the top 4 31.3% → 35.3%), k = 8 (0.280 → 0.218, top 8 37.0% → 42.3%).
# Issue 5, fourteenth session (docs/RESULTS.md): three more levers on phase 2's retreat to
# ∅, each from the same phase-1 model (runs/realm/tiny-copy, scripts/reproduce/realm/tiny-warm.sh)
# and compared with phase 2 (runs/realm/warm) at its 391 steps:
# 1. the marginal taken per masked token, as REALM's released model.py does, instead of
#    over the whole span (the paper's equation and ragl's default);
# 2. a reader that has learned to copy from passages other than the sentence's own: a
#    phase 1b where the reader reads one passage that holds the masked span
#    (retrieval = "oracle", k = 1; towers frozen; 200 steps of 8), then phase 2 from that
#    reader. With ∅ beside the passage (copy-oracle) the phase-1 towers put 0.87 on ∅
#    and the reader trains mostly without the passage, so the warm-up that phase 2
#    starts from has no ∅ (copy-oracle-nonull);
# 3. k = 8 + ∅ (the default) instead of 4 + ∅ (first stopped at 200 steps, then
#    continued from its checkpoint; the command below runs it through).
set -euo pipefail
R=${RAGL:-target/release/ragl}
O=runs/realm
C=configs/realm/squad-tiny-warm.toml
sed -e 's/^retrieval = "dense"/retrieval = "dense"\nmarginal = "token"/' $C > $O/warm-token.toml
$R pretrain --config $O/warm-token.toml --run $O/warm-token --stop-after 391
sed -e 's/^retrieval = "dense"/retrieval = "oracle"/' -e 's/^k = 4/k = 1/' \
    -e 's/^lr = 3e-5/lr = 0.0/' -e 's/^every = 40/every = 0/' -e 's/^batch = 4/batch = 8/' \
    -e 's/^max_steps = 400/max_steps = 200/' $C > $O/copy-oracle.toml
$R pretrain --config $O/copy-oracle.toml --run $O/copy-oracle
sed -e 's/^null_doc = true/null_doc = false/' $O/copy-oracle.toml > $O/copy-oracle-nonull.toml
$R pretrain --config $O/copy-oracle-nonull.toml --run $O/copy-oracle-nonull
sed -e 's#^reader = "runs/realm/tiny-copy/export/reader"#reader = "runs/realm/copy-oracle-nonull/export/reader"#' \
    $C > $O/warm-after-oracle.toml
$R pretrain --config $O/warm-after-oracle.toml --run $O/warm-after-oracle --stop-after 391
sed -e 's/^k = 4/k = 8/' $C > $O/warm-k8.toml
$R pretrain --config $O/warm-k8.toml --run $O/warm-k8 --stop-after 391
# Held-out utility and p(∅|x) of phase 2 and these variants, side by side.
{
  echo "run,step,utility,p_null"
  for r in warm warm-token warm-after-oracle warm-k8; do
    awk -F, -v r=$r 'NR==1{for(i=1;i<=NF;i++) c[$i]=i; next} {print r","$1","$c["utility"]","(c["p_null"]?$c["p_null"]:"")}' $O/$r/eval.csv
  done
} > $O/retreat-levers.csv
$R plot --csv $O/retreat-levers.csv --x step --y utility --group run \
    --title "Held-out utility, phase 2 and three levers" -o $O/retreat-levers-utility.png
