#!/usr/bin/env python3
# Reproduces (docs/RESULTS.md, REALM pretraining): the four-seed row (11.12 ± 1.05% against 9.04 ± 0.69%).
"""Issue 5: phase-2 runs of several batch-order seeds side by side (scripts/reproduce/realm/tiny-warm-seeds.sh).

For each REALM run RUN (with its BERT-only twin RUN-none; runs/realm/warm's twin is
warm-none): the last held-out evaluation, and the training utility and RU of the top
document as means over 50-step windows. Then the mean and sample standard deviation over
the seeds of the final numbers and of the gains.

Usage: python3 scripts/reproduce/realm/seeds_summary.py [--dir runs/realm] warm warm-s3 warm-s4
"""
import argparse
import csv
import math
import statistics


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def windows(metrics, col, width=50):
    out, cur = [], []
    for r in metrics:
        cur.append(num(r.get(col)))
        if len(cur) == width:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return [statistics.fmean(w) if all(math.isfinite(v) for v in w) else math.nan for w in out]


def fmt(xs):
    return " ".join("  n/a" if not math.isfinite(x) else f"{x:5.2f}" for x in xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="runs/realm")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    finals = []
    print("run        step  token_acc  null_only  bert_only  span  span_null  span_bert  loss   loss_bert  utility  ru_top")
    for run in a.runs:
        e = rows(f"{a.dir}/{run}/eval.csv")[-1]
        n = rows(f"{a.dir}/{run}-none/eval.csv")[-1]
        assert e["step"] == n["step"], (run, e["step"], n["step"])
        f = {
            "acc": num(e["token_acc"]), "null": num(e["null_token_acc"]), "bert": num(n["token_acc"]),
            "span": num(e["span_acc"]), "span_null": num(e["null_span_acc"]), "span_bert": num(n["span_acc"]),
            "loss": num(e["loss"]), "loss_bert": num(n["loss"]),
            "utility": num(e["utility"]), "ru_top": num(e.get("ru_top")),
        }
        finals.append(f)
        print(f"{run:10} {e['step']:>4}  {f['acc']:9.2f}  {f['null']:9.2f}  {f['bert']:9.2f}  {f['span']:5.2f}  "
              f"{f['span_null']:9.2f}  {f['span_bert']:9.2f}  {f['loss']:5.2f}  {f['loss_bert']:9.2f}  "
              f"{f['utility']:7.3f}  {f['ru_top']:6.3f}")
    print("\nheld-out evaluations (step: token_acc / null_only / utility / ru_top)")
    for run in a.runs:
        ev = rows(f"{a.dir}/{run}/eval.csv")
        print(f"{run:10} " + "  ".join(
            f"{r['step']}: {num(r['token_acc']):.2f}/{num(r['null_token_acc']):.2f}/{num(r['utility']):.3f}/{num(r.get('ru_top')):.3f}"
            for r in ev))
    print("\ntraining, 50-step means")
    for run in a.runs:
        m = rows(f"{a.dir}/{run}/metrics.csv")
        print(f"{run:10} utility {fmt(windows(m, 'utility'))}")
        print(f"{'':10} ru_top  {fmt(windows(m, 'ru_top'))}")
    if len(finals) > 1:
        print(f"\nover {len(finals)} seeds: mean ± sample sd")
        def ms(key):
            xs = [f[key] for f in finals] if isinstance(key, str) else [key(f) for f in finals]
            return f"{statistics.fmean(xs):.2f} ± {statistics.stdev(xs):.2f}"
        print(f"token acc: REALM {ms('acc')}, null only {ms('null')}, BERT-only {ms('bert')}")
        print(f"gain over null only {ms(lambda f: f['acc'] - f['null'])}, over BERT-only {ms(lambda f: f['acc'] - f['bert'])}")
        print(f"span acc: REALM {ms('span')}, null only {ms('span_null')}, BERT-only {ms('span_bert')}")
        print(f"loss: REALM {ms('loss')}, BERT-only {ms('loss_bert')}")
        print(f"held-out utility {ms('utility')}")


if __name__ == "__main__":
    main()
