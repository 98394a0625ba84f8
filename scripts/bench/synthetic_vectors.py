# Usage: python3 scripts/bench/synthetic_vectors.py --real P.npy Q.npy --n N --out DIR [--queries 1024] [--unit]
#        (docs/RESULTS.md: dense retrieval)
"""Synthetic embedding sets with the structure of real ones, for index benchmarks.

Uniformly random 384-d vectors are the worst case for every graph index (no cluster
structure, full intrinsic dimension), so benchmarks on them say little about real corpora.
This script fits a generator to real sentence embeddings (e.g. MiniLM vectors of the SQuAD
paragraphs and questions from `ragl embed`) and samples as many vectors as asked:

  * the real vectors' mean and principal axes (PCA) give the space;
  * C cluster centres are drawn in that space with the real eigenvalue spectrum, scaled to
    carry the between-cluster share of the variance;
  * each point is its centre plus noise confined to a random low-dimensional subspace of the
    top principal axes (low intrinsic dimension), also following the spectrum;
  * points are L2-normalised when the real vectors are (MiniLM's are).

    python3 scripts/bench/synthetic_vectors.py --real p.npy q.npy --n 100000 --queries 1024 \
        --out DIR [--clusters 2000] [--intrinsic 48] [--seed 0] [--unit]

writes DIR/db.npy ([n, d] f32) and DIR/queries.npy ([queries, d] f32), and prints the
spectrum match (share of variance in the top 10/50 components, real vs synthetic).
"""
import argparse, os
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--real", nargs="+", required=True)
ap.add_argument("--n", type=int, required=True)
ap.add_argument("--queries", type=int, default=1024)
ap.add_argument("--out", required=True)
ap.add_argument("--clusters", type=int, default=2000)
ap.add_argument("--intrinsic", type=int, default=48)
ap.add_argument("--between", type=float, default=0.5, help="share of variance between clusters")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--unit", action="store_true", help="L2-normalise the real vectors and the output")
a = ap.parse_args()

real = np.concatenate([np.load(p).astype(np.float64) for p in a.real])
if a.unit:
    real /= np.linalg.norm(real, axis=1, keepdims=True)
d = real.shape[1]
unit = bool(np.allclose(np.linalg.norm(real, axis=1), 1.0, atol=1e-3))
mu = real.mean(0)
cov = np.cov((real - mu).T)
ev, vecs = np.linalg.eigh(cov)
ev, vecs = ev[::-1].clip(min=0), vecs[:, ::-1]
rng = np.random.default_rng(a.seed)

centres = mu + (rng.standard_normal((a.clusters, d)) * np.sqrt(ev * a.between)) @ vecs.T
# Cluster sizes vary as in real corpora (Zipf-like).
w = 1.0 / np.arange(1, a.clusters + 1) ** 0.5
w /= w.sum()
top = max(a.intrinsic * 4, 64)


def sample(m):
    out = np.empty((m, d), dtype=np.float32)
    step = 65536
    for s in range(0, m, step):
        k = min(step, m - s)
        c = rng.choice(a.clusters, size=k, p=w)
        # Each cluster has its own low-dimensional subspace of the top principal axes.
        x = centres[c].copy()
        for cid in np.unique(c):
            rows = np.nonzero(c == cid)[0]
            r = np.random.default_rng(a.seed * 1000003 + int(cid))
            axes = r.choice(top, size=a.intrinsic, replace=False)
            scale = np.sqrt(ev[axes] * (1 - a.between) * d / a.intrinsic / 4)
            noise = rng.standard_normal((len(rows), a.intrinsic)) * scale
            x[rows] += noise @ vecs[:, axes].T
        if unit:
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + k] = x
    return out


db = sample(a.n)
q = sample(a.queries)
os.makedirs(a.out, exist_ok=True)
np.save(os.path.join(a.out, "db.npy"), db)
np.save(os.path.join(a.out, "queries.npy"), q)


def share(x):
    e = np.linalg.eigvalsh(np.cov((x - x.mean(0)).T))[::-1]
    return e[:10].sum() / e.sum(), e[:50].sum() / e.sum()


sub = db[rng.choice(len(db), size=min(len(db), 20000), replace=False)].astype(np.float64)
print(f"unit-norm: {unit}; variance in top 10/50 components: real {share(real)[0]:.3f}/{share(real)[1]:.3f}, "
      f"synthetic {share(sub)[0]:.3f}/{share(sub)[1]:.3f}")
