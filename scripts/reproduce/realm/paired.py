#!/usr/bin/env python3
"""Issue 5: two held-out evaluations of the same sentences, compared example by example.

Each argument is an `eval_examples.csv` (written by `ragl pretrain` at every held-out
evaluation), optionally with `:STEP`; without it, A is taken at its first step and B at
its last. The examples are joined on their id. For the utility, the loss, p(∅|x) and (where
both files have it) span_hit, it prints the two means, the mean paired difference B − A with its standard error and a 95%
interval (normal, and a seeded bootstrap of 10,000 resamples), and the share of sentences
whose value went up. The paired interval is what says whether a change in the held-out
mean is larger than the sentences' own spread.

With four arguments A B C D it compares the gap D − C with the gap B − A, sentence by
sentence: (D − C) − (B − A). With A, C a BERT-only twin at two steps and B, D the retrieval
run at the same steps, that says whether retrieval's advantage over no retrieval grew.

Usage: python3 scripts/reproduce/realm/paired.py A/eval_examples.csv[:STEP] B/eval_examples.csv[:STEP]
       python3 scripts/reproduce/realm/paired.py A[:STEP] B[:STEP] C[:STEP] D[:STEP]
"""
import csv
import math
import random
import sys


def load(arg, first):
    path, _, step = arg.partition(":")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in rows})
    if not steps:
        sys.exit(f"{path}: no evaluations")
    s = int(step) if step else (steps[0] if first else steps[-1])
    if s not in steps:
        sys.exit(f"{path}: no evaluation at step {s} (there are {steps})")
    return s, {r["id"]: r for r in rows if int(r["step"]) == s}


def gap(x, y):
    """Per-column y - x of two rows of the same sentence."""
    return {k: str(float(y[k]) - float(x[k])) for k in x if k in y and k not in ("step", "id")}


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    runs = [load(arg, i % 2 == 0) for i, arg in enumerate(sys.argv[1:])]
    ids = sorted(runs[0][1].keys())
    if any(r.keys() != runs[0][1].keys() for _, r in runs):
        sys.exit(f"the evaluations hold different sentences ({', '.join(str(len(r)) for _, r in runs)})")
    n = len(ids)
    names = "ABCD"
    print(f"{n} sentences: " + ", ".join(f"{names[k]} = {arg.split(':')[0]} at step {runs[k][0]}" for k, arg in enumerate(sys.argv[1:])))
    if len(runs) == 4:
        print("A and B below are the gaps B - A and D - C, per sentence")
        a = {i: gap(runs[0][1][i], runs[1][1][i]) for i in ids}
        b = {i: gap(runs[2][1][i], runs[3][1][i]) for i in ids}
    else:
        a, b = runs[0][1], runs[1][1]
    rng = random.Random(1)
    print(f"{'measure':<9} {'A':>8} {'B':>8} {'B - A':>8} {'s.e.':>7} {'95% (normal)':>19} {'95% (bootstrap)':>19} {'B > A':>6}")
    # span_hit (0/1: the span is in a retrieved document) came later; older files lack it.
    cols = ["utility", "loss", "p_null"] + [c for c in ["span_hit"] if c in a[ids[0]] and c in b[ids[0]]]
    for col in cols:
        xa = [float(a[i][col]) for i in ids]
        xb = [float(b[i][col]) for i in ids]
        d = [y - x for x, y in zip(xa, xb)]
        mean = sum(d) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
        se = sd / math.sqrt(n)
        boots = sorted(sum(rng.choices(d, k=n)) / n for _ in range(10000))
        lo, hi = boots[249], boots[9749]
        up = sum(x > 0 for x in d) / n
        print(
            f"{col:<9} {sum(xa) / n:8.4f} {sum(xb) / n:8.4f} {mean:+8.4f} {se:7.4f} "
            f"[{mean - 1.96 * se:+.4f}, {mean + 1.96 * se:+.4f}] [{lo:+.4f}, {hi:+.4f}] {100 * up:5.1f}%"
        )


if __name__ == "__main__":
    main()
