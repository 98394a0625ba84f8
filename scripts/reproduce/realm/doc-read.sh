#!/usr/bin/env bash
# Usage: scripts/reproduce/realm/doc-read.sh [W] [STEPS]      (defaults 1.0 and 200)
# Reproduces (docs/RESULTS.md, REALM pretraining): phase 1 of every phase-2 run (`doc-read.sh 1.0 0`), and
# train.doc_read_loss = 1 at step 200: p(∅|x) 0.210 against 0.497, utility 0.177 against 0.187.
# Issue 5, fifteenth session (docs/RESULTS.md): phase 2 with an extra reader loss,
# `train.doc_read_loss = W` (the mean over the retrieved documents of −log p(y|z,x), each
# read on its own), from phase 1 (runs/realm/tiny-copy, scripts/reproduce/realm/tiny-warm.sh; made
# here if missing, stopped at its 327 steps rather than at 20 minutes). REALM's reader
# learns only through the marginal, whose posterior sits on ∅ once the towers trust it;
# this term keeps the reader learning to read documents. Held-out evaluations every 100
# steps on the 300 held-out sentences of every phase-2 run.
#   scripts/reproduce/realm/doc-read.sh [W] [STEPS]      (defaults 1.0 and 200)
set -euo pipefail
R=${RAGL:-target/release/ragl}
W=${1:-1.0}
N=${2:-200}
O=runs/realm
MODELS=../shared/models
C=configs/realm/squad-tiny-warm.toml
source "$(dirname "$0")/common.sh"
prepare_examples
if [ ! -d $O/tiny-copy/export ]; then
  sed -e 's/^k = 4/k = 1/' -e 's/^exclude_own = true/exclude_own = false/' \
      -e 's/^batch = 4/batch = 8/' -e 's/^max_minutes = 65/max_minutes = 20/' \
      configs/realm/squad-minilm-tiny.toml > $O/tiny-copy.toml
  $R pretrain --config $O/tiny-copy.toml --run $O/tiny-copy --stop-after 327 --max-minutes 200
fi
sed -e "s/^save_every = 50/save_every = 50\ndoc_read_loss = $W/" $C > $O/warm-docread.toml
$R pretrain --config $O/warm-docread.toml --run $O/warm-docread --stop-after $N --max-minutes 200
