#!/usr/bin/env bash
# Usage: scripts/reproduce/realm/plot-phase2.sh [OUT_DIR]   (draws docs/img/realm_phase2_{utility,p_null}.png)
# Issue 5 (docs/RESULTS.md): the held-out utility and p(∅|x) of the 2,000-step phase-2 runs
# (scripts/reproduce/realm/query-only.sh: the query tower alone in two batch orders, and TOWERS=both,
# REALM's own setting, in batch orders 2 and 3), one curve a run, from each run's eval.csv. A query-only run not on
# this machine is drawn from scripts/reproduce/realm/phase2-recorded.csv instead (its held-out utility
# and p(∅|x) as docs/RESULTS.md records them, sixteenth session; "(recorded)" in the
# legend); other missing runs are left out, and the script says which.
#   scripts/reproduce/realm/plot-phase2.sh [OUT_DIR]        (default docs/img)
set -euo pipefail
R=${RAGL:-target/release/ragl}
O=runs/realm
OUT=${1:-docs/img}
CSV=$O/phase2.csv
REC="$(dirname "$0")/phase2-recorded.csv"
echo "run,step,utility,p_null" > $CSV
n=0
for r in query-only query-only-s3 both-towers both-towers-s3; do
  if [ ! -f $O/$r/eval.csv ] && grep -q "^$r," "$REC"; then
    echo "plot-phase2: $O/$r/eval.csv is missing; $r drawn from $REC" >&2
    grep "^$r," "$REC" | sed "s/^$r,/$r (recorded),/" >> $CSV
    n=$((n + 1))
    continue
  fi
  if [ ! -f $O/$r/eval.csv ]; then
    echo "plot-phase2: $O/$r/eval.csv is missing; $r left out" >&2
    continue
  fi
  # Columns by name, so that a later column added to eval.csv does not shift them.
  awk -F, -v r=$r 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { print r "," $c["step"] "," $c["utility"] "," $c["p_null"] }' \
    $O/$r/eval.csv >> $CSV
  n=$((n + 1))
done
[ $n -gt 0 ] || { echo "plot-phase2: no phase-2 run under $O" >&2; exit 2; }
mkdir -p $OUT
$R plot --csv $CSV --x step --y utility --group run \
    --title "Phase 2 with null doc: held-out retrieval utility" -o $OUT/realm_phase2_utility.png
$R plot --csv $CSV --x step --y p_null --group run \
    --title "Phase 2 with null doc: held-out p(null|x)" -o $OUT/realm_phase2_p_null.png
