# Usage: python3 scripts/reference/make_eval_fixtures.py   (with sacrebleu==2.6.0; writes crates/eval/tests/fixtures)
"""Writes crates/eval/tests/fixtures/{mt.hyp.txt, mt.ref2.txt, expected.json}.

The reference text (mt.ref.txt) was written for ragl to exercise the corners of sacrebleu:
numbers, HTML entities, <skipped>, Unicode punctuation and symbols, Greek final sigma,
Turkish dotted I, tabs, NBSP, U+001C (whitespace to Python, not to Rust), CJK, an empty
line, trailing whitespace. The hypothesis and the second reference are seeded
perturbations. Expected values come from sacrebleu 2.6.0's Python API on the lines as its
CLI reads them (newline="\n", rstrip()).

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install sacrebleu==2.6.0
    /tmp/ref/bin/python scripts/reference/make_eval_fixtures.py
"""
import json, os, sys

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

sys.path.insert(0, os.path.dirname(__file__))
from perturb import perturb_lines

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "eval", "tests", "fixtures")


def read(p):
    with open(p, encoding="utf-8", newline="\n") as f:
        return [l.rstrip() for l in f]


def write(p, lines):
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


ref = read(os.path.join(FIX, "mt.ref.txt"))
hyp = perturb_lines(ref, seed=7, p_drop=0.15, p_swap=0.15, p_replace=0.15)
ref2 = perturb_lines(ref, seed=8)
write(os.path.join(FIX, "mt.hyp.txt"), hyp)
write(os.path.join(FIX, "mt.ref2.txt"), ref2)
hyp, ref2 = read(os.path.join(FIX, "mt.hyp.txt")), read(os.path.join(FIX, "mt.ref2.txt"))

cases = []
for nrefs in (1, 2):
    refs = [ref] + ([ref2] if nrefs == 2 else [])
    for lc in (False, True):
        for tok in ("13a", "intl", "char", "none"):
            for smooth, value in (("exp", None), ("floor", None), ("add-k", None), ("none", None), ("floor", 0.5)):
                m = BLEU(tokenize=tok, lowercase=lc, smooth_method=smooth, smooth_value=value)
                s = m.corpus_score(hyp, refs)
                cases.append(dict(metric="bleu", nrefs=nrefs, lowercase=lc, tokenize=tok, smooth=smooth,
                                  smooth_value=value, score=s.score, counts=list(s.counts), totals=list(s.totals),
                                  sys_len=s.sys_len, ref_len=s.ref_len, text=str(s),
                                  signature=m.get_signature().format()))
        for wo in (0, 1, 2):
            for ws in (False, True):
                m = CHRF(word_order=wo, lowercase=lc, whitespace=ws)
                s = m.corpus_score(hyp, refs)
                cases.append(dict(metric="chrf", nrefs=nrefs, lowercase=lc, word_order=wo, whitespace=ws,
                                  score=s.score, name=s.name, text=str(s), signature=m.get_signature().format()))
sentence = dict(
    bleu=[BLEU(effective_order=True).sentence_score(h, [r]).score for h, r in zip(hyp, ref)],
    chrf=[CHRF().sentence_score(h, [r]).score for h, r in zip(hyp, ref)],
)
with open(os.path.join(FIX, "expected.json"), "w") as f:
    json.dump(dict(sacrebleu=sacrebleu.__version__, corpus=cases, sentence=sentence), f, indent=1)
print(f"{len(cases)} corpus cases, {len(hyp)} sentences")
