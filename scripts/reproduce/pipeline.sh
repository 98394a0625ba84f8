#!/usr/bin/env bash
# Usage: scripts/reproduce/pipeline.sh [DATA_DIR] [MODELS_DIR]   (every run behind docs/RESULTS.md, hours on 2 cores)
# The quickstart's pipeline on real data: the same stages as `ragl quickstart`, over the
# public data sets in DATA_DIR and the Hugging Face checkpoints in MODELS_DIR instead of
# the generated world, sized for the CPU budgets docs/RESULTS.md reports (hours, not
# minutes: about 1 h of REALM pretraining, 1.5 h of QA fine-tuning and 2 h of translation
# training on 2 cores).
#
#   scripts/reproduce/pipeline.sh [DATA_DIR] [MODELS_DIR]      (defaults ../shared/data ../shared/models)
#
# Run from the repository root after `cargo build --release`. Every stage skips what is
# already there, so an interrupted run is resumed by running the script again.
#
#   REALM   SQuAD-open: split → chunk → index (MiniLM, BM25, HNSW) → fine-tune QA with dense
#           retrieval and closed-book → predict → score (scripts/reproduce/qa/reproduce.sh);
#           annotate → mask → pretrain in two phases, with BERT-only twins and ablations
#           (scripts/reproduce/realm/tiny-warm.sh); index the pretrained doc tower → fine-tune QA from
#           the pretrained towers (d) (scripts/reproduce/qa/reproduce.sh again: it skips what is done).
#   kNN-MT  train the German→English base model (configs/mt/base.toml) → datastores →
#           λ tuning on dev → test BLEU with and without kNN (scripts/reproduce/knnmt/reproduce.sh).
set -euo pipefail
DATA=${1:-../shared/data}
MODELS=${2:-../shared/models}
R=${RAGL:-target/release/ragl}
export RAGL=$R
here=$(dirname "$0")
[ -d "$DATA/qa/squad" ] || { echo "no $DATA/qa/squad: give the data directory" >&2; exit 2; }
[ -d "$MODELS/all-minilm-l6-v2" ] || { echo "no $MODELS/all-minilm-l6-v2: give the models directory" >&2; exit 2; }

echo "== REALM: open-domain QA on SQuAD-open"
"$here/qa/reproduce.sh" "$DATA" "$MODELS"
echo "== REALM: pretraining, two phases with bert-tiny (scripts/reproduce/realm/tiny-warm.sh)"
"$here/realm/tiny-warm.sh" "$MODELS"
echo "== REALM: QA from the pretrained towers (d): the (d) stages of scripts/reproduce/qa/reproduce.sh"
"$here/qa/reproduce.sh" "$DATA" "$MODELS"

echo "== kNN-MT: base model, datastores, BLEU"
mkdir -p runs
sed "s#\.\./shared/data#$DATA#g" configs/mt/base.toml > runs/mt-base.toml
$R mt train --config runs/mt-base.toml --run runs/mt-base
"$here/knnmt/reproduce.sh" runs/mt-base "$DATA/mt" runs/knnmt
