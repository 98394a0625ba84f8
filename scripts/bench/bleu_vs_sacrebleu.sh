#!/usr/bin/env bash
# Usage: scripts/bench/bleu_vs_sacrebleu.sh [DATA_DIR] [RAGL] [SACREBLEU] [RUNS]   (docs/RESULTS.md: BLEU and chrF)
# Whole-process timing of `ragl eval bleu` against the sacrebleu CLI on newstest2014
# (3,003 segments; hypothesis = the reference perturbed with seed 1, as in
# scripts/reference/compare_sacrebleu.py). Runs alternate (ragl, sacrebleu, ragl, ...)
# and each figure is the median of RUNS runs.
#
#   python3 -m venv /tmp/ref && /tmp/ref/bin/pip install sacrebleu==2.6.0
#   scripts/bench/bleu_vs_sacrebleu.sh [DATA_DIR=../shared/data] [RAGL=target/release/ragl] [SACREBLEU=/tmp/ref/bin/sacrebleu] [RUNS=11]
set -euo pipefail
DATA=${1:-../shared/data}
RAGL=${2:-target/release/ragl}
SACREBLEU=${3:-/tmp/ref/bin/sacrebleu}
RUNS=${4:-11}
PY=$(dirname "$SACREBLEU")/python
REF=$DATA/mt/newstest/newstest2014-deen.en
HYP=$(mktemp /tmp/ragl-bench-hyp.XXXXXX)
"$PY" - "$REF" "$HYP" <<'PYEOF'
import sys; sys.path.insert(0, "scripts/reference")
from perturb import perturb_lines
ref = [l.rstrip() for l in open(sys.argv[1], encoding="utf-8", newline="\n")]
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(perturb_lines(ref, seed=1)) + "\n")
PYEOF
echo "ragl:      $("$RAGL" eval bleu "$REF" -i "$HYP" | head -1)"
echo "sacrebleu: $("$SACREBLEU" "$REF" -i "$HYP" -f text -w 2)"
time_one() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
ragl_t=(); sb_t=()
for _ in $(seq "$RUNS"); do
  ragl_t+=("$(time_one "$RAGL" eval bleu "$REF" -i "$HYP")")
  sb_t+=("$(time_one "$SACREBLEU" "$REF" -i "$HYP" -f text)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
r=$(median "${ragl_t[@]}"); s=$(median "${sb_t[@]}")
printf 'median wall seconds over %d runs: ragl %.4f  sacrebleu %.4f  speed-up %.1fx\n' "$RUNS" "$r" "$s" "$(echo "$s / $r" | bc -l)"
rm -f "$HYP"
