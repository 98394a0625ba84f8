#!/usr/bin/env bash
# Issue 6 as measured: SQuAD-open split, indexes, the fine-tuning runs and every prediction
# whose exact match docs/RESULTS.md reports. Usage: scripts/reproduce/qa/reproduce.sh [DATA_DIR]
# (default ../shared/data) [MODELS_DIR] (default ../shared/models). Run from the repository
# root after `cargo build --release`. Each stage is skipped when its output exists.
set -euo pipefail
DATA=${1:-../shared/data}
MODELS=${2:-../shared/models}
R=${RAGL:-target/release/ragl}
S=$DATA/qa/squad/dev-v1.1.json
M=$MODELS/all-minilm-l6-v2
O=runs/squad-open
Q=runs/qa
mkdir -p $O $Q

[ -f $O/test.jsonl ] || $R qa split -i $S --out-dir $O --seed 1
[ -f $O/passages.jsonl ] || $R corpus chunk --input $S --output $O/passages.jsonl --tokenizer $M
[ -d $O/index-minilm ] || $R index build --passages $O/passages.jsonl --model $M --out $O/index-minilm
[ -d $O/index-bm25 ] || $R index build --passages $O/passages.jsonl --kind bm25 --out $O/index-bm25
# The HNSW index over the very same vectors (exported from the exact index as .npy).
if [ ! -d $O/index-minilm-hnsw ]; then
  python3 scripts/reproduce/qa/vectors_npy.py $O/index-minilm $O/minilm-vectors.npy
  $R index build --vectors $O/minilm-vectors.npy --kind hnsw --graph-threads 1 --out $O/index-minilm-hnsw
fi

# (c) dense retrieval + MiniLM reader, stopped after the step-180 dev evaluation (its best
# model then is kept as best-180), and (a) closed-book.
if [ ! -d $Q/dense-minilm/best-180 ]; then
  $R finetune-qa --config configs/qa/squad-minilm.toml --run $Q/dense-minilm --stop-after 180
  cp -r $Q/dense-minilm/best $Q/dense-minilm/best-180
fi
[ -d $Q/closed-book/best ] || $R finetune-qa --config configs/qa/squad-closed-book.toml --run $Q/closed-book

# Subsets: the first 500 test questions (the paired exact / HNSW comparison) and the first 300
# questions of each foreign QA set (formats).
S=$Q/sub
mkdir -p $S
head -500 $O/test.jsonl > $S/test500.jsonl
head -300 $DATA/qa/nq-open/NQ-open.dev.jsonl > $S/nq300.jsonl
head -300 $DATA/qa/curatedtrec/large2470-test.tsv > $S/trec300.tsv
python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1]))[:300], open(sys.argv[2],'w'))" \
    $DATA/qa/webquestions/test.json $S/webq300.json

pred() { # name checkpoint index k questions
  local out=$Q/pred/$1.jsonl
  mkdir -p $Q/pred
  [ -f $out ] || { /usr/bin/time -f "$1: %e s" $R predict-qa --checkpoint $2 --index $3 --k $4 \
      --passages $O/passages.jsonl --questions $5 -o $out; }
  echo "$1: $($R eval qa --gold $5 --pred $out 2>&1 | tr '\n' ' ')"
}
C=$Q/dense-minilm/best-180
pred c-exact-test $C $O/index-minilm 3 $O/test.jsonl
pred a-closed-test $Q/closed-book/best $O/index-minilm 0 $O/test.jsonl
head -500 $Q/pred/c-exact-test.jsonl > $Q/pred/c-exact-test500.jsonl
echo "c-exact-test500: $($R eval qa --gold $S/test500.jsonl --pred $Q/pred/c-exact-test500.jsonl | tr '\n' ' ')"
pred c-hnsw-test500 $C $O/index-minilm-hnsw 3 $S/test500.jsonl
pred c-nq300 $C $O/index-minilm 1 $S/nq300.jsonl
pred c-webq300 $C $O/index-minilm 1 $S/webq300.json
pred c-trec300 $C $O/index-minilm 1 $S/trec300.tsv

# (c) in two stages (2026-11-28, ninth session), from MiniLM again: the reader learns to
# read on each training question's own paragraph (one epoch, 12 questions per step,
# train.own_passages), then the query tower and the reader are fine-tuned together on the
# top 3 retrieved (500 steps of 4); the best dev model on test at k = 3 and k = 5, and the
# stage-1 reader alone (query tower still MiniLM).
[ -d $Q/read/best ] || $R finetune-qa --config configs/qa/squad-minilm-read.toml --run $Q/read
[ -d $Q/retrieve/best ] || $R finetune-qa --config configs/qa/squad-minilm-retrieve.toml --run $Q/retrieve
head -200 $O/dev.jsonl > $S/dev200.jsonl
pred c4-dev200-k3 $Q/retrieve/best $O/index-minilm 3 $S/dev200.jsonl
pred c4-dev200-k5 $Q/retrieve/best $O/index-minilm 5 $S/dev200.jsonl
pred c4-exact-test $Q/retrieve/best $O/index-minilm 3 $O/test.jsonl
pred c4k5-exact-test $Q/retrieve/best $O/index-minilm 5 $O/test.jsonl
pred c4read-exact-test $Q/read/best $O/index-minilm 3 $O/test.jsonl
pred b4-bm25-test $Q/retrieve/best $O/index-bm25 3 $O/test.jsonl

# (d) (2026-11-28, twelfth session): the same two stages with the query tower and the index
# of issue 5's pretraining run (runs/realm/warm, from scripts/reproduce/realm/tiny-warm.sh); k chosen
# on dev as for (c), and the stage-1 reader alone.
X=runs/realm/index-warm
if [ ! -d runs/realm/warm/export ]; then
  echo "(d) skipped: no runs/realm/warm/export yet (scripts/reproduce/realm/tiny-warm.sh makes it; then run this again)" >&2
  exit 0
fi
[ -d $X ] || $R index build --passages $O/passages.jsonl --model runs/realm/warm/export/doc --kind exact --out $X
[ -d $Q/read-d/best ] || $R finetune-qa --config configs/qa/squad-realm-read.toml --run $Q/read-d
[ -d $Q/retrieve-d/best ] || $R finetune-qa --config configs/qa/squad-realm-retrieve.toml --run $Q/retrieve-d
pred d-dev200-k3 $Q/retrieve-d/best $X 3 $S/dev200.jsonl
pred d-dev200-k5 $Q/retrieve-d/best $X 5 $S/dev200.jsonl
pred d-exact-test $Q/retrieve-d/best $X 3 $O/test.jsonl
pred dread-exact-test $Q/read-d/best $X 3 $O/test.jsonl
