#!/bin/bash
# Usage: scripts/bench/crash_resume.sh PASSAGES.jsonl MODEL_DIR WORKDIR [SECONDS_BEFORE_KILL]   (docs/RESULTS.md: crash safety)
# Crash safety of `ragl index build`: kill -9 a build midway, run it again, and compare the
# result with an uninterrupted build of the same command (manifest and every file).
#   scripts/bench/crash_resume.sh PASSAGES.jsonl MODEL_DIR WORKDIR [SECONDS_BEFORE_KILL]
set -u
P=$1; M=$2; W=$3; T=${4:-75}
R=${RAGL:-target/release/ragl}
ARGS="index build --passages $P --model $M --kind hnsw --graph-threads 1 --chunk-rows 256"
rm -rf "$W/clean" "$W/killed" "$W/killed.partial"; mkdir -p "$W"
$R $ARGS --out "$W/clean" 2>&1 | tail -2
$R $ARGS --out "$W/killed" > "$W/killed1.log" 2>&1 &
PID=$!
sleep "$T"
kill -9 $PID
wait $PID 2>/dev/null
echo "killed after $T s; whole chunks kept: $(ls "$W/killed.partial" | grep -c '\.f32$')"
[ -e "$W/killed" ] && echo "ERROR: an index was published by the killed build"
$R $ARGS --out "$W/killed" 2>&1 | tail -2
sha256sum "$W/clean/manifest.json" "$W/killed/manifest.json"
diff <(cd "$W/clean" && sha256sum ./*) <(cd "$W/killed" && sha256sum ./*) && echo IDENTICAL
