#!/usr/bin/env bash
# Usage: scripts/reproduce/knnlm/size_curve.sh   (RAGL=path/to/ragl; after reproduce.sh)
# kNN-LM perplexity on Koran test against the datastore's size: datastores of the first 10, 25
# and 50% of Koran train (100% is reproduce.sh's), k 1024, λ 0.8, T 10 (chosen on Koran dev);
# writes runs/knnlm/koran-size.csv and a PNG of it.
set -euo pipefail
R=${RAGL:-target/release/ragl}; M=runs/knnlm/lm; D=runs/knnlm/data; O=runs/knnlm
echo "fraction,keys,perplexity,lm_perplexity" > $O/koran-size.csv
n=$(wc -l < $D/koran.train.txt)
for f in 10 25 50; do
  head -n $((n * f / 100)) $D/koran.train.txt > $O/koran.train.$f.txt
  $R -q knnlm build --model $M --text $O/koran.train.$f.txt --out $O/ds-koran-$f > /dev/null 2>&1
  $R -q knnlm eval --model $M --datastore $O/ds-koran-$f --text $O/koran.test.txt --k 1024 --lambda 0.8 --temperature 10 --json > $O/koran-size-$f.json
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%s,%d,%.3f,%.3f' % (sys.argv[2], r['keys'], r['best']['perplexity'], r['lm']['perplexity']))" $O/koran-size-$f.json $f >> $O/koran-size.csv
done
python3 -c "import json; r=json.load(open('$O/koran.test.json')); print('100,%d,%.3f,%.3f' % (r['keys'], r['best']['perplexity'], r['lm']['perplexity']))" >> $O/koran-size.csv
echo done
"$R" plot --csv $O/koran-size.csv --x keys --y perplexity,lm_perplexity -o $O/koran-size.png
