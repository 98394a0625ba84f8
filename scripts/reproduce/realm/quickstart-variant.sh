#!/usr/bin/env bash
# Usage: scripts/reproduce/realm/quickstart-variant.sh QS NAME [section.key=value ...]
#
# One variant of the quickstart's REALM pretraining, on the data of a finished
# `ragl quickstart --out QS` run: its configs/realm.toml with the given overrides (TOML values,
# e.g. train.lr=3e-5 'model.retrieval="oracle"'), pretrained into QS/variants/NAME, then the
# dense index of its towers, answer recall@5 of the test questions, the last held-out row
# (masked-token accuracy with retrieval and with ∅ only, utility, p(∅|x)), and open-QA test EM
# after the quickstart's own fine-tuning (k 3) from its towers and reader.
# Reproduces docs/RESULTS.md, "Why REALM pretraining does not help at quickstart scale".
set -euo pipefail
qs=$1; name=$2; shift 2
RAGL=${RAGL:-ragl}
out="$qs/variants/$name"
rm -rf "$out"; mkdir -p "$out"
cfg="$out/realm.toml"
cp "$qs/configs/realm.toml" "$cfg"
for kv in "$@"; do
    section=${kv%%.*}; rest=${kv#*.}; key=${rest%%=*}; value=${rest#*=}
    python3 - "$cfg" "$section" "$key" "$value" <<'PY'
import re, sys
path, section, key, value = sys.argv[1:]
s = open(path).read()
a = s.index(f"[{section}]")
b = s.find("\n[", a + 1)
b = len(s) if b < 0 else b
block = s[a:b]
line = f"{key} = {value}"
if re.search(rf"^{key} = ", block, re.M):
    block = re.sub(rf"^{key} = .*$", line, block, flags=re.M)
else:
    block = block.rstrip("\n") + "\n" + line + "\n"
open(path, "w").write(s[:a] + block + s[b:])
PY
done
passages="$qs/data/world/passages.jsonl"; test="$qs/data/qa/test.jsonl"
"$RAGL" -q pretrain --config "$cfg" --run "$out/run" > "$out/pretrain.log" 2>&1
"$RAGL" -q index build --passages "$passages" --model "$out/run/export/doc" \
    --query-model "$out/run/export/query" --pooling mean --normalize yes --max-len 64 \
    --out "$out/index" > /dev/null 2>&1
r5=$("$RAGL" -q retrieve --index "$out/index" -i "$test" --k 20 2>/dev/null \
    | "$RAGL" eval retrieval --gold "$test" --passages "$passages" --k 5 --json 2>/dev/null)
sed -e "s#^index = .*#index = \"$out/index\"#" \
    -e "s#^reader = .*#reader = \"$out/run/export/reader\"#" \
    "$qs/configs/qa-retrieval.toml" > "$out/qa.toml"
"$RAGL" -q finetune-qa --config "$out/qa.toml" --run "$out/qa" > /dev/null 2>&1
em=$("$RAGL" -q predict-qa --checkpoint "$out/qa/best" --passages "$passages" -i "$test" --k 3 \
    2>/dev/null | "$RAGL" eval qa --gold "$test" --json)
held=$(tail -1 "$out/run/eval.csv")
python3 - "$name" "$r5" "$em" "$held" <<'PY'
import json, sys
name, r5, em, held = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4].split(",")
print(f"{name}: recall@5 {100 * r5['recall'][0]:.2f}  QA EM {em['exact_match']:.2f}  "
      f"held-out step {held[0]}: token acc {held[3]} (∅ only {held[5]}), utility {held[7]}, p(∅|x) {held[14]}")
PY
