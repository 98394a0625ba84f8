# Usage: source "$(dirname "$0")/common.sh" from scripts/reproduce/realm/*.sh; not run on its own.
# Shared by the scripts/reproduce/realm/*.sh run scripts; expects R (the ragl binary), O (runs/realm)
# and MODELS (the HF checkpoints) to be set by the caller.

# The pretraining examples every issue-5 run reads, made once from the SQuAD-open passages.
prepare_examples() {
  mkdir -p $O
  [ -f $O/ann.jsonl ] || $R mask annotate --input runs/squad-open/passages.jsonl --output $O/ann.jsonl
  [ -f $O/examples.jsonl ] || $R mask make --input $O/ann.jsonl --output $O/examples.jsonl \
      --tokenizer $MODELS/all-minilm-l6-v2 --strategy salient --seed 1
}

# compare NAME RUN...: the held-out evaluations of the runs, one line per (run, step), to
# $O/NAME.csv, and its token accuracy and loss plots to $O/NAME-{token_acc,loss}.png.
compare() {
  local name=$1 title=$2
  shift 2
  {
    echo "run,step,token_acc,null_token_acc,span_acc,loss,utility,ru_top"
    for r in "$@"; do
      tail -n +2 $O/$r/eval.csv | awk -F, -v r=$r '{print r","$1","$4","$6","$5","$3","$8","$9}'
    done
  } > $O/$name.csv
  for y in token_acc loss; do
    $R plot --csv $O/$name.csv --x step --y $y --group run --title "Held-out $y$title" \
        -o $O/$name-$y.png
  done
}

# warm_twin CONFIG OUT: the BERT-only twin of a phase-2 config (scripts/reproduce/realm/tiny-warm*.sh):
# no retrieval, starting from the twin's phase-1 export.
warm_twin() {
  sed -e 's/^retrieval = "dense"/retrieval = "none"/' \
      -e 's#runs/realm/tiny-copy/#runs/realm/tiny-copy-none/#' "$1" > "$2"
}
