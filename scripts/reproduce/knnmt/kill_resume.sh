#!/usr/bin/env bash
# Usage: scripts/reproduce/knnmt/kill_resume.sh MODEL SRC TGT OUT   (docs/RESULTS.md: crash safety)
# Crash test on real data (issue 7): build a datastore uninterrupted, build it again but
# kill -9 the process once a few chunks are on disk, rerun the same command (it resumes),
# and compare every file of the two datastores byte for byte. Exact kind with f32 keys, so
# that every file is deterministic (an HNSW graph is too with --graph-threads 1).
#
#   scripts/reproduce/knnmt/kill_resume.sh MODEL SRC TGT OUT
set -euo pipefail
MODEL=$1 SRC=$2 TGT=$3 OUT=$4
RAGL=${RAGL:-target/release/ragl}
args=(knnmt build --model "$MODEL" --src "$SRC" --tgt "$TGT" --kind exact --keys f32 --chunk-keys 16384)
build() { "$RAGL" "${args[@]}" --out "$1"; }
rm -rf "$OUT"; mkdir -p "$OUT"
t=$(date +%s); build "$OUT/uninterrupted"; echo "uninterrupted build: $(( $(date +%s) - t ))s"
# The binary itself in the background (not a subshell), so that kill -9 reaches it.
"$RAGL" "${args[@]}" --out "$OUT/killed" & pid=$!
while [ ! -f "$OUT/killed/index.partial/chunk-000002.f32" ]; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null || true
echo "killed with $(ls "$OUT/killed/index.partial" | grep -c '\.f32$') chunks on disk; manifest present: $([ -f "$OUT/killed/manifest.json" ] && echo yes || echo no)"
build "$OUT/killed"
(cd "$OUT/uninterrupted" && find . -type f | sort | xargs sha256sum) > "$OUT/a.sha"
(cd "$OUT/killed" && find . -type f | sort | xargs sha256sum) > "$OUT/b.sha"
if cmp -s "$OUT/a.sha" "$OUT/b.sha"; then echo "identical: $(wc -l < "$OUT/a.sha") files"; cat "$OUT/a.sha"; else echo "DIFFERENT"; diff "$OUT/a.sha" "$OUT/b.sha"; exit 1; fi
