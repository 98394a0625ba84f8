# Usage: imported by compare_sacrebleu.py, make_eval_fixtures.py and scripts/bench/bleu_vs_sacrebleu.sh; not run on its own.
"""Seeded perturbation of reference text into a pseudo-hypothesis: drop, swap and replace
words. Shared by the comparison scripts and the fixture generator."""
import random


def perturb_lines(lines, seed, p_drop=0.08, p_swap=0.08, p_replace=0.08):
    rng = random.Random(seed)
    vocab = sorted({w for l in lines for w in l.split()}) or ["x"]
    out = []
    for line in lines:
        words = line.split(" ")
        i, res = 0, []
        while i < len(words):
            r = rng.random()
            if r < p_drop:
                i += 1
                continue
            if r < p_drop + p_swap and i + 1 < len(words):
                res += [words[i + 1], words[i]]
                i += 2
                continue
            if r < p_drop + p_swap + p_replace:
                res.append(rng.choice(vocab))
            else:
                res.append(words[i])
            i += 1
        out.append(" ".join(res))
    return out
