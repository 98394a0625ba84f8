# Usage: python3 scripts/bench/squad_own_paragraph_rank.py DIR   (DIR holds p.npy and q.npy from `ragl embed`)
"""Sentence-embedding sanity on SQuAD: for each question, the rank of its own paragraph
among its article's paragraphs by cosine similarity of `ragl embed` vectors.

    D=/tmp/squad; python3 scripts/bench/squad_jsonl.py ../shared/data/qa/squad/dev-v1.1.json $D
    ragl embed --model ../shared/models/all-minilm-l6-v2 --input $D/paragraphs.jsonl --output $D/p.npy
    ragl embed --model ../shared/models/all-minilm-l6-v2 --input $D/questions.jsonl --output $D/q.npy
    python3 scripts/bench/squad_own_paragraph_rank.py $D     # needs numpy
"""
import json, os, sys

import numpy as np

d = sys.argv[1]
P, Q = np.load(os.path.join(d, "p.npy")), np.load(os.path.join(d, "q.npy"))
pids = open(os.path.join(d, "p.ids")).read().split("\n")[:-1]
qrows = [json.loads(l) for l in open(os.path.join(d, "questions.jsonl"))]
assert len(pids) == len(P) and len(qrows) == len(Q)
P /= np.linalg.norm(P, axis=1, keepdims=True)
Q /= np.linalg.norm(Q, axis=1, keepdims=True)
index = {p: i for i, p in enumerate(pids)}
article = np.array([p.rsplit(":", 1)[0] for p in pids])
ranks = []
for qi, q in enumerate(qrows):
    own = index[q["paragraph"]]
    same = np.nonzero(article == article[own])[0]
    scores = P[same] @ Q[qi]
    ranks.append(1 + int((scores > scores[list(same).index(own)]).sum()))
ranks = np.array(ranks)
n_par = {a: int((article == a).sum()) for a in set(article)}
print(f"questions {len(ranks)}; paragraphs per article: median {int(np.median(list(n_par.values())))}")
for k in (1, 5, 10):
    print(f"own paragraph in top {k:2d} of its article: {100 * (ranks <= k).mean():.1f}%")
print(f"mean reciprocal rank: {(1 / ranks).mean():.3f}")
