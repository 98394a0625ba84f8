#!/usr/bin/env python3
"""Paired comparison of two QA prediction files on the same NQ-open-format gold file.

Exact match per question with the SQuAD/NQ-open normalisation (the totals must equal what
`ragl eval qa` prints for each file: that is the check that the normalisation agrees),
then the questions only one system gets right, an exact two-sided McNemar test on those,
and a 95% paired bootstrap interval (10,000 resamples, seed 1) of the EM difference.

Usage: python3 scripts/reproduce/qa/paired_em.py GOLD.jsonl A.pred.jsonl B.pred.jsonl
"""
import json, re, string, sys, random
def norm(s):
    s = s.lower()
    s = ''.join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r'\b(a|an|the)\b', ' ', s)
    return ' '.join(s.split())
gold = [json.loads(l) for l in open(sys.argv[1])]
def em(path):
    p = {}
    for l in open(path):
        r = json.loads(l); p[r['question']] = r['prediction']
    return [int(any(norm(p[g['question']]) == norm(a) for a in g['answer'])) for g in gold]
a, b = em(sys.argv[2]), em(sys.argv[3])
n = len(gold)
print(f"A {sum(a)} ({100*sum(a)/n:.2f})  B {sum(b)} ({100*sum(b)/n:.2f})  n {n}")
only_a = sum(x and not y for x, y in zip(a, b)); only_b = sum(y and not x for x, y in zip(a, b))
print(f"right in A only {only_a}, in B only {only_b}, both {sum(x and y for x,y in zip(a,b))}")
# exact two-sided McNemar (binomial on discordant pairs)
from math import comb
m = only_a + only_b; k = min(only_a, only_b)
p = min(1.0, 2 * sum(comb(m, i) for i in range(k + 1)) / 2 ** m)
print(f"McNemar exact p = {p:.4f}")
random.seed(1); d = []
for _ in range(10000):
    ix = [random.randrange(n) for _ in range(n)]
    d.append(100 * sum(a[i] - b[i] for i in ix) / n)
d.sort(); print(f"EM difference A − B {100*(sum(a)-sum(b))/n:.2f}, 95% bootstrap CI [{d[250]:.2f}, {d[9750]:.2f}]")
