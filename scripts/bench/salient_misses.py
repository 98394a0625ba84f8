# Usage: python3 scripts/bench/salient_misses.py --ragl BIN --squad SQUAD.json   (docs/RESULTS.md: the 35.4% ceiling)
"""Where `ragl mask annotate` misses SQuAD answers (issue 4's coverage), stdlib only.

    python3 scripts/bench/salient_misses.py --ragl target/release/ragl \
        --squad ../shared/data/qa/squad/dev-v1.1.json

Counts answer spans as salient_eval.py does (distinct per question) and sorts each miss
by how it relates to the annotated spans: no overlap (lower-case answer, or one with a
capital or digit), the answer inside a longer annotated span, the answer containing
annotated spans, or crossing one. Then measures what nested variants of the annotated
spans would add if they were offered as extra mask candidates (a prototype, not what
ragl does): a leading "the", a number's unit word, a quantity's modifier ("nearly"),
the year inside a date, and the prefixes and suffixes of 2-4 word names.
"""
import argparse, collections, re

from salient_common import annotate, answers, squad_passages

ap = argparse.ArgumentParser()
ap.add_argument("--ragl", required=True)
ap.add_argument("--squad", required=True)
a = ap.parse_args()

ctx, rows = squad_passages(a.squad)
ann = {k: [(s["start"], s["end"], s["type"]) for s in v] for k, v in annotate(rows, ragl=a.ragl).items()}


cat, total = collections.Counter(), 0
for pid, p in ctx.items():
    sp = [(s, e) for s, e, _ in ann[pid]]
    for s, e, t in answers(p):
        total += 1
        if (s, e) in sp:
            cat["exact"] += 1
            continue
        ov = [x for x in sp if x[0] < e and s < x[1]]
        salient_looking = bool(re.match(r"[A-Z0-9$£€]", t) or re.search(r"\d", t))
        if not ov:
            k = "no overlap, capital or digit" if salient_looking else "no overlap, lower case"
        elif any(x[0] <= s and e <= x[1] for x in ov):
            k = "answer inside a longer span"
        elif any(s <= x[0] and x[1] <= e for x in ov):
            k = "answer contains spans"
        else:
            k = "crossing"
        cat[k] += 1
print(f"{total} answer spans")
for k, v in cat.most_common():
    print(f"  {k:32s} {v:6d} {100 * v / total:5.1f}%")

QUANT = r"(?:less than|more than|fewer than|over|under|about|around|approximately|nearly|almost|at least|up to|some|roughly)"


def variants(text, spans, rules):
    out = set()
    for s, e, t in spans:
        seg = text[s:e]
        if "the" in rules and re.search(r"(?:^|\s)[Tt]he $", text[max(0, s - 5):s]):
            out.add((s - 4, e))
        if "unit" in rules and t == "NUMBER":
            m = re.match(r" ([a-z]+|%)", text[e:e + 25])
            if m:
                out.add((s, e + m.end()))
        if "modifier" in rules and t == "NUMBER":
            m = re.search(QUANT + r" $", text[max(0, s - 20):s])
            if m:
                out.add((s - len(m.group(0)), e))
        if "year" in rules and t == "DATE":
            for m in re.finditer(r"\b\d{3,4}s?\b", seg):
                out.add((s + m.start(), s + m.end()))
            m = re.match(r"(\d{1,2} )?([A-Z][a-z]+) (\d{4})$", seg)
            if m and m.group(1):
                out.add((s + len(m.group(1)), e))
        if "name parts" in rules and t in ("PERSON", "ORG", "LOC", "MISC"):
            ws = [(m.start(), m.end()) for m in re.finditer(r"\S+", seg)]
            if 1 < len(ws) <= 4:
                for i in range(1, len(ws)):
                    out.add((s + ws[i][0], e))
                    out.add((s, s + ws[i - 1][1]))
    return out


print("nested variants as extra candidates: exact coverage, extra spans")
ALL = ["the", "unit", "modifier", "year", "name parts"]
for rules in [[]] + [[r] for r in ALL] + [ALL]:
    exact = extra = 0
    for pid, p in ctx.items():
        have = {(s, e) for s, e, _ in ann[pid]}
        var = variants(p["context"], ann[pid], set(rules)) - have
        extra += len(var)
        have |= var
        exact += sum((s, e) in have for s, e, _ in answers(p))
    print(f"  {'+'.join(rules) or 'as annotated':40s} {100 * exact / total:5.1f}%  +{extra} spans")
