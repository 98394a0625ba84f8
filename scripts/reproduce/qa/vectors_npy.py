# Usage: python3 scripts/reproduce/qa/vectors_npy.py EXACT_INDEX_DIR OUT.npy   (also writes OUT.ids; used by reproduce.sh)
"""Writes an exact ragl index's f32 vectors as .npy (+ .ids), so that an HNSW index can be
built over the very same vectors. Standard library only."""
import json
import shutil
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
dim = json.load(open(f"{src}/manifest.json"))["config"]["dim"]
raw = open(f"{src}/vectors.f32", "rb").read()
n = len(raw) // (4 * dim)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, dim)
hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + raw)
shutil.copy(f"{src}/ids.txt", out[: -len(".npy")] + ".ids")
print(f"{n} vectors of dim {dim} -> {out}")
