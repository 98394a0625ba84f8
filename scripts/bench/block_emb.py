# Usage: python3 scripts/bench/block_emb.py OUT_DIR [--rows 13353718] [--dim 128] [--queries 1000] [--seed 0]
#        (docs/RESULTS.md: REALM's released checkpoints)
"""A synthetic store of REALM's `block_emb` shape, for measuring search at the real scale.

REALM's block and question vectors leave its embedder through a LayerNorm, so each row has
mean 0 and variance 1 across its 128 dimensions (up to the learned gain and bias). This draws
rows from a Gaussian with a random covariance of decaying spectrum (real embeddings are far
from isotropic) and standardises each row as a LayerNorm does. Writes OUT_DIR/db.npy
([rows, dim] f32, written in chunks: 13.35M × 128 is 6.8 GB) and OUT_DIR/q.npy
([queries, dim] f32, drawn the same way).
"""
import argparse, os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=13_353_718)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    d = a.dim
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    mix = (basis * np.sqrt(1.0 / np.arange(1, d + 1) ** 0.8)).astype(np.float32)

    def draw(n):
        x = rng.standard_normal((n, d), dtype=np.float32) @ mix.T
        x -= x.mean(axis=1, keepdims=True)
        x /= np.sqrt(x.var(axis=1, keepdims=True) + 1e-12)
        return x.astype(np.float32)

    os.makedirs(a.out, exist_ok=True)
    db = np.lib.format.open_memmap(os.path.join(a.out, "db.npy"), mode="w+", dtype=np.float32, shape=(a.rows, d))
    step = 1 << 20
    for lo in range(0, a.rows, step):
        hi = min(a.rows, lo + step)
        db[lo:hi] = draw(hi - lo)
    db.flush()
    np.save(os.path.join(a.out, "q.npy"), draw(a.queries))
    print(f"wrote {a.out}/db.npy ({a.rows} × {d}) and q.npy ({a.queries} × {d})")


if __name__ == "__main__":
    main()
