# Usage: source "$(dirname "$0")/common.sh" from scripts/gpu/*.sh, then `unpack DIR`; not run on its own.
# Shared by scripts/gpu/*.sh, sourced on the GPU machine.

# unpack DIR: unpacks what scripts/gpu/prepare.sh stored xz-compressed (to fit the transfer
# limit), then cd's into DIR. python3's lzma, since the GPU image may lack xz. Sets DATA and
# MODELS, sed expressions that point a config's data and checkpoints into DIR.
unpack() {
  cd "$1"
  python3 - <<'PY'
import lzma, pathlib, shutil
for p in pathlib.Path(".").rglob("*.xz"):
    with lzma.open(p) as src, open(p.with_suffix(""), "wb") as dst:
        shutil.copyfileobj(src, dst)
    p.unlink()
PY
  chmod +x ragl-cuda
  DATA="s#^examples = .*#examples = \"$1/examples.jsonl\"#; s#^passages = .*#passages = \"$1/passages.jsonl\"#"
  MODELS="s#^query = .*#query = \"$1/minilm-f16\"#; s#^reader = .*#reader = \"$1/tiny-f16\"#"
}
