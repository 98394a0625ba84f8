"""Compares `ragl eval bleu|chrf --json` with sacrebleu 2.6.0 on real test sets.

For every test set (all newstest sets, multidomain it/koran/medical test, IWSLT14 test) the
hypothesis is the reference perturbed with a fixed seed (drop, swap, replace words); a
second reference is another seeded perturbation. For each BLEU tokenizer (13a, intl, char,
none), with and without lowercasing, with one and two references, and for chrF and chrF++,
the n-gram counts, totals, lengths and the score (as a float, all digits) must be equal.

Usage (in a throwaway venv with sacrebleu==2.6.0):
    python scripts/reference/compare_sacrebleu.py --ragl target/release/ragl --data ../shared/data
Exit status 1 if anything differs.
"""
import argparse, glob, json, os, subprocess, sys, tempfile, time

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

sys.path.insert(0, os.path.dirname(__file__))
from perturb import perturb_lines


def read(path):
    # As sacrebleu's CLI reads files: newline="\n", then line.rstrip().
    with open(path, encoding="utf-8", newline="\n") as f:
        return [l.rstrip() for l in f]


def ragl(bin_, args):
    out = subprocess.run([bin_, "eval", *args, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ragl {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--quick", action="store_true", help="only the first 3 sets")
    a = ap.parse_args()
    mt = os.path.join(a.data, "mt")
    sets = sorted(glob.glob(f"{mt}/newstest/*.en"))
    sets += [f"{mt}/multidomain/{d}/test.en" for d in ("it", "koran", "medical")]
    sets += [f"{mt}/iwslt14/test.en"]
    if a.quick:
        sets = sets[:3]
    tmp = tempfile.mkdtemp(prefix="ragl-cmp-")
    checks = mismatches = 0
    t0 = time.time()
    for ref_path in sets:
        name = os.path.relpath(ref_path, mt)
        ref = read(ref_path)
        hyp = perturb_lines(ref, seed=1)
        ref2 = perturb_lines(ref, seed=2)
        hyp_f, ref2_f = os.path.join(tmp, "hyp"), os.path.join(tmp, "ref2")
        for path, lines in ((hyp_f, hyp), (ref2_f, ref2)):
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        for nrefs in (1, 2):
            ref_files = [ref_path] + ([ref2_f] if nrefs == 2 else [])
            refs = [ref] + ([ref2] if nrefs == 2 else [])
            for lc in (False, True):
                for tok in ("13a", "intl", "char", "none"):
                    args = ["bleu", *ref_files, "-i", hyp_f, "--tokenize", tok] + (["--lowercase"] if lc else [])
                    got = ragl(a.ragl, args)
                    metric = BLEU(tokenize=tok, lowercase=lc)
                    s = metric.corpus_score(hyp, refs)
                    want = dict(score=s.score, counts=list(s.counts), totals=list(s.totals),
                                sys_len=s.sys_len, ref_len=s.ref_len)
                    have = {k: got[k] for k in want}
                    # Equal up to the version field (ragl-x.y.z vs 2.6.0).
                    sig_ok = got["signature"].rsplit("|", 1)[0] == metric.get_signature().format().rsplit("|", 1)[0]
                    checks += 1
                    if have != want or not sig_ok:
                        mismatches += 1
                        print(f"MISMATCH {name} bleu tok={tok} lc={lc} nrefs={nrefs}\n  ragl {have}\n  sacrebleu {want}\n  sig {got['signature']}")
                for wo in (0, 2):
                    args = ["chrf", *ref_files, "-i", hyp_f, "--word-order", str(wo)] + (["--lowercase"] if lc else [])
                    got = ragl(a.ragl, args)
                    metric = CHRF(word_order=wo, lowercase=lc)
                    s = metric.corpus_score(hyp, refs)
                    sig_ok = got["signature"].rsplit("|", 1)[0] == metric.get_signature().format().rsplit("|", 1)[0]
                    checks += 1
                    if got["score"] != s.score or got["name"] != s.name or not sig_ok:
                        mismatches += 1
                        print(f"MISMATCH {name} chrf word_order={wo} lc={lc} nrefs={nrefs}: ragl {got['score']} sacrebleu {s.score}")
        # Sentence level (sacrebleu's CLI turns on effective order), one reference.
        for metric_name, metric in (("bleu", BLEU(effective_order=True)), ("chrf", CHRF())):
            out = subprocess.run([a.ragl, "eval", metric_name, ref_path, "-i", hyp_f, "--sentence-level", "--json"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            got = [json.loads(l)["score"] for l in out]
            want = [metric.sentence_score(h, [r]).score for h, r in zip(hyp, ref)]
            checks += 1
            if got != want:
                mismatches += 1
                bad = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w) if len(got) == len(want) else -1
                print(f"MISMATCH {name} sentence-level {metric_name}: first differing line {bad + 1}")
        print(f"{name:40s} {len(ref):5d} lines  checked  ({time.time() - t0:.0f}s)", flush=True)
    print(f"\n{checks} comparisons over {len(sets)} test sets, {mismatches} mismatches (sacrebleu {sacrebleu.__version__})")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
