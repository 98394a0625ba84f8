#!/usr/bin/env python3
"""Issue 5: two held-out evaluations of the same sentences, compared example by example.

Each argument is an `eval_examples.csv` (written by `ragl pretrain` at every held-out
evaluation), optionally with `:STEP`; without it, A is taken at its first step and B at
its last. The examples are joined on their id. For the utility, the loss and p(∅|x), it
prints the two means, the mean paired difference B − A with its standard error and a 95%
interval (normal, and a seeded bootstrap of 10,000 resamples), and the share of sentences
whose value went up. The paired interval is what says whether a change in the held-out
mean is larger than the sentences' own spread.

Usage: python3 scripts/realm/paired.py A/eval_examples.csv[:STEP] B/eval_examples.csv[:STEP]
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


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    (sa, a), (sb, b) = load(sys.argv[1], True), load(sys.argv[2], False)
    ids = sorted(a.keys() & b.keys())
    if len(ids) != len(a) or len(ids) != len(b):
        sys.exit(f"the two evaluations hold different sentences ({len(a)}, {len(b)}, {len(ids)} shared)")
    n = len(ids)
    print(f"{n} sentences: A = {sys.argv[1].split(':')[0]} at step {sa}, B = {sys.argv[2].split(':')[0]} at step {sb}")
    rng = random.Random(1)
    print(f"{'measure':<9} {'A':>8} {'B':>8} {'B - A':>8} {'s.e.':>7} {'95% (normal)':>19} {'95% (bootstrap)':>19} {'B > A':>6}")
    for col in ["utility", "loss", "p_null"]:
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
