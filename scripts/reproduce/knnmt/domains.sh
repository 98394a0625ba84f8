#!/usr/bin/env bash
# Usage: scripts/reproduce/knnmt/domains.sh MODEL DATA OUT [domain ...]   (docs/RESULTS.md: kNN-MT domain table)
# kNN-MT domain adaptation on real data (issue 7): one base model, one datastore per domain
# built from in-domain training text, λ/k/T tuned on a dev split only, then base vs kNN-MT
# BLEU on the domain's test set (same beam, same sentences, same run).
#
#   scripts/reproduce/knnmt/domains.sh MODEL DATA OUT [domain ...]
#     MODEL  a model or run directory (ragl mt train)
#     DATA   the mt data directory (../shared/data/mt)
#     OUT    where datastores, dev splits, sweeps and results go
#     domain koran | emea | kde4 | multi30k (default: koran emea kde4)
#
# Dev splits: koran uses multidomain/koran/dev; EMEA and KDE4 have no dev set, so their
# last 500 training pairs are held out as dev and the datastore is built from the rest.
# multi30k is the in-domain case: a datastore over the base model's own Multi30k training
# data, tuned on Multi30k val, tested on test_2016_flickr.
# Environment: RAGL (binary, default target/release/ragl), TUNE_N (dev sentences used for
# tuning, default 300), LAMBDAS, KS, TEMPS (sweep grids).
set -euo pipefail
MODEL=$1 DATA=$2 OUT=$3; shift 3
DOMAINS=${*:-koran emea kde4}
RAGL=${RAGL:-target/release/ragl}
TUNE_N=${TUNE_N:-300}
LAMBDAS=${LAMBDAS:-0.3,0.5,0.7}
KS=${KS:-8}
TEMPS=${TEMPS:-10,100}
mkdir -p "$OUT"

for dom in $DOMAINS; do
  d="$OUT/$dom"; mkdir -p "$d"
  case $dom in
    koran)
      train_src=$DATA/multidomain/koran/train.de; train_tgt=$DATA/multidomain/koran/train.en
      dev_src=$DATA/multidomain/koran/dev.de; dev_tgt=$DATA/multidomain/koran/dev.en
      test_src=$DATA/multidomain/koran/test.de; test_tgt=$DATA/multidomain/koran/test.en ;;
    emea|kde4)
      name=$([ "$dom" = emea ] && echo EMEA || echo KDE4)
      n=$(wc -l < "$DATA/opus-domains/$name.train.de")
      head -n $((n - 500)) "$DATA/opus-domains/$name.train.de" > "$d/train.de"
      head -n $((n - 500)) "$DATA/opus-domains/$name.train.en" > "$d/train.en"
      tail -n 500 "$DATA/opus-domains/$name.train.de" > "$d/dev.de"
      tail -n 500 "$DATA/opus-domains/$name.train.en" > "$d/dev.en"
      train_src=$d/train.de; train_tgt=$d/train.en; dev_src=$d/dev.de; dev_tgt=$d/dev.en
      test_src=$DATA/opus-domains/$name.test.de; test_tgt=$DATA/opus-domains/$name.test.en ;;
    multi30k)
      train_src=$DATA/multi30k/train.de; train_tgt=$DATA/multi30k/train.en
      dev_src=$DATA/multi30k/val.de; dev_tgt=$DATA/multi30k/val.en
      test_src=$DATA/multi30k/test_2016_flickr.de; test_tgt=$DATA/multi30k/test_2016_flickr.en ;;
    *) echo "unknown domain $dom" >&2; exit 2 ;;
  esac
  echo "== $dom: datastore"
  "$RAGL" knnmt build --model "$MODEL" --src "$train_src" --tgt "$train_tgt" --out "$d/datastore"
  echo "== $dom: tuning on the first $TUNE_N dev sentences"
  "$RAGL" knnmt eval --model "$MODEL" --datastore "$d/datastore" -i "$dev_src" --ref "$dev_tgt" \
    --limit "$TUNE_N" --sweep --lambdas "$LAMBDAS" --ks "$KS" --temperatures "$TEMPS" --report "$d/sweep.json" --plot "$d/sweep.png"
  read -r k lambda temp < <(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["best"]; print(b["k"], b["lambda"], b["temperature"])' "$d/sweep.json")
  echo "== $dom: test with k $k, lambda $lambda, T $temp"
  "$RAGL" knnmt eval --model "$MODEL" --datastore "$d/datastore" -i "$test_src" --ref "$test_tgt" \
    --k "$k" --lambda "$lambda" --temperature "$temp" --report "$d/test.json" -o "$d/test.hyp" | tee "$d/test.txt"
done
