# Usage: python3 scripts/bench/salient_eval.py (--ragl BIN | --annotator CMD) --squad SQUAD.json --gold GOLD.jsonl
#        (docs/RESULTS.md: salient span annotation)
"""Salient-span quality of `ragl mask annotate` (stdlib only).

    python3 scripts/bench/salient_eval.py --ragl target/release/ragl \
        --squad ../shared/data/qa/squad/dev-v1.1.json --gold data/salient/gold_annotations.jsonl
    python3 scripts/bench/salient_eval.py --annotator "node scripts/bench/compromise_spans.mjs" \
        --squad ../shared/data/qa/squad/dev-v1.1.json --gold data/salient/gold_annotations.jsonl

(a) SQuAD answer coverage: every SQuAD paragraph is annotated as a passage (with its
    article title); a gold answer span (answer_start, text) counts as covered exactly when an
    annotated span has the same character offsets, and "with one token slack" when each
    boundary is off by at most one whitespace-separated token (e.g. "the 1990s" vs "1990s").
(b) Precision/recall/F1 against the hand-annotated sentences (data/salient): the sentences are
    annotated together with the paragraphs (so the mined gazetteer is the corpus's), and a
    predicted span is correct when its offsets equal a gold span's (untyped), and, for the
    typed score, its type too. Entity/date F1 excludes NUMBER spans on both sides.
"""
import argparse, json, sys

from salient_common import annotate, answers, squad_passages

ap = argparse.ArgumentParser()
ap.add_argument("--ragl", help="the ragl binary whose `mask annotate` is scored")
ap.add_argument("--annotator", help="instead of ragl, a shell command that reads passages JSONL on stdin and "
                "writes `mask annotate`'s JSONL on stdout (a peer, e.g. scripts/bench/compromise_spans.mjs)")
ap.add_argument("--squad", required=True)
ap.add_argument("--gold", required=True)
a = ap.parse_args()
if not (a.ragl or a.annotator):
    sys.exit("give --ragl or --annotator")

gold = [json.loads(l) for l in open(a.gold)]
contexts, rows = squad_passages(a.squad)
rows += [{"id": f"gold:{i}", "text": g["text"]} for i, g in enumerate(gold)]
ann = annotate(rows, ragl=a.ragl, annotator=a.annotator)


def token_edges(text):
    """Character offsets where whitespace-separated tokens start and end."""
    starts, ends, i = [], [], 0
    for tok in text.split():
        i = text.index(tok, i)
        starts.append(i)
        ends.append(i + len(tok))
        i += len(tok)
    return starts, ends


def close(a, b, edges):
    """Boundaries a and b differ by at most one token."""
    lo, hi = min(a, b), max(a, b)
    return sum(1 for e in edges if lo < e <= hi) <= 1 if lo != hi else True


exact = slack = total = 0
by_type = {}
for pid, p in contexts.items():
    spans = ann[pid]
    text = p["context"]
    st, en = token_edges(text)
    have = {(s["start"], s["end"]) for s in spans}
    for s, e, _ in answers(p):
        total += 1
        if (s, e) in have:
            exact += 1
            slack += 1
        elif any(close(s, x["start"], st + en) and close(e, x["end"], st + en) for x in spans):
            slack += 1
print(f"(a) SQuAD answer coverage over {total} answer spans: exact {100 * exact / total:.1f}%, "
      f"with one token slack {100 * slack / total:.1f}%")


def prf(tp, npred, ngold):
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def gold_spans(g):
    out, at = [], {}
    for s, t in g["entities"]:
        i = g["text"].find(s, at.get(s, 0))
        at[s] = i + 1
        out.append((len(g["text"][:i]), len(g["text"][:i]) + len(s), t))
    return out


rows = {"all spans (untyped)": [0, 0, 0], "all spans (typed)": [0, 0, 0], "entity+date (untyped)": [0, 0, 0],
        "entity+date (typed)": [0, 0, 0]}
per = {}
for i, g in enumerate(gold):
    gs = gold_spans(g)
    ps = [(x["start"], x["end"], x["type"]) for x in ann[f"gold:{i}"]]
    for name, keep, typed in [("all spans (untyped)", lambda t: True, False), ("all spans (typed)", lambda t: True, True),
                              ("entity+date (untyped)", lambda t: t != "NUMBER", False),
                              ("entity+date (typed)", lambda t: t != "NUMBER", True)]:
        G = {(s, e, t if typed else "") for s, e, t in gs if keep(t)}
        P = {(s, e, t if typed else "") for s, e, t in ps if keep(t)}
        rows[name][0] += len(G & P)
        rows[name][1] += len(P)
        rows[name][2] += len(G)
    for t in {"PERSON", "ORG", "LOC", "MISC", "DATE", "NUMBER"}:
        G = {(s, e) for s, e, tt in gs if tt == t}
        P = {(s, e) for s, e, tt in ps if tt == t}
        c = per.setdefault(t, [0, 0, 0])
        c[0] += len(G & P); c[1] += len(P); c[2] += len(G)
print(f"(b) against {len(gold)} hand-annotated sentences ({sum(len(g['entities']) for g in gold)} spans):")
for name, (tp, n_p, n_g) in rows.items():
    p, r, f = prf(tp, n_p, n_g)
    print(f"    {name:24s} P {p:.3f}  R {r:.3f}  F1 {f:.3f}")
for t, (tp, n_p, n_g) in sorted(per.items()):
    p, r, f = prf(tp, n_p, n_g)
    print(f"    {t:24s} P {p:.3f}  R {r:.3f}  F1 {f:.3f}  (gold {n_g})")
