# Usage: python3 scripts/bench/faiss_search.py DB.npy QUERIES.npy [--k 10] [--threads 2] [--hnsw] [--ef LIST]
#        (docs/RESULTS.md: dense retrieval, the faiss peer)
"""The faiss-cpu side of the index benchmarks (peer for `ragl retrieve --query-vectors` and
`ragl index audit`), on the same .npy vectors, with the same thread count.

    python3 scripts/bench/faiss_search.py DB.npy QUERIES.npy [--k 10] [--threads 2]
        [--hnsw] [--ef 16,32,64,128] [--M 16] [--ef-construction 128] [--repeat 3]

Prints JSON lines: exact IndexFlatIP queries/s (median of --repeat searches), and with
--hnsw the IndexHNSWFlat (inner product) build time and, per efSearch, recall@k against
the exact result and queries/s.
"""
import argparse, json, time
import numpy as np
import faiss

ap = argparse.ArgumentParser()
ap.add_argument("db")
ap.add_argument("queries")
ap.add_argument("--k", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--hnsw", action="store_true")
ap.add_argument("--ef", default="16,32,64,128")
ap.add_argument("--M", type=int, default=16)
ap.add_argument("--ef-construction", type=int, default=128)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--save-exact", help="write the exact top-k ids to this .npy")
a = ap.parse_args()
faiss.omp_set_num_threads(a.threads)
xb = np.ascontiguousarray(np.load(a.db, mmap_mode="r"), dtype=np.float32)
xq = np.ascontiguousarray(np.load(a.queries), dtype=np.float32)
n, d = xb.shape


def timed(f):
    ts = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        r = f()
        ts.append(time.perf_counter() - t)
    return r, float(np.median(ts))


flat = faiss.IndexFlatIP(d)
flat.add(xb)
(dist, ids), secs = timed(lambda: flat.search(xq, a.k))
print(json.dumps({"peer": f"faiss {faiss.__version__} IndexFlatIP", "n": n, "dim": d, "queries": len(xq), "k": a.k,
                  "threads": a.threads, "seconds": secs, "queries_per_s": len(xq) / secs}))
if a.save_exact:
    np.save(a.save_exact, ids)
if a.hnsw:
    del flat
    h = faiss.IndexHNSWFlat(d, a.M, faiss.METRIC_INNER_PRODUCT)
    h.hnsw.efConstruction = a.ef_construction
    t = time.perf_counter()
    h.add(xb)
    build = time.perf_counter() - t
    for ef in [int(e) for e in a.ef.split(",")]:
        h.hnsw.efSearch = ef
        (_, got), secs = timed(lambda: h.search(xq, a.k))
        rec = np.mean([len(set(g) & set(e)) / a.k for g, e in zip(got, ids)])
        print(json.dumps({"peer": f"faiss IndexHNSWFlat M={a.M} efConstruction={a.ef_construction}", "build_seconds": build,
                          "ef": ef, "recall": float(rec), "queries_per_s": len(xq) / secs}))
