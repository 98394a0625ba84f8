# Usage: python3 scripts/bench/squad_jsonl.py SQUAD.json OUTDIR
"""Writes SQuAD paragraphs and questions as JSONL for `ragl embed` (stdlib only).

    python3 scripts/bench/squad_jsonl.py ../shared/data/qa/squad/dev-v1.1.json OUTDIR
OUTDIR/paragraphs.jsonl: {"id": "<title>:<n>", "text": context}   (1,702 for the 40 articles)
OUTDIR/passages.jsonl:   the same with "title" (underscores as spaces): the SQuAD-open corpus
OUTDIR/questions.jsonl:  {"id": qid, "text": question, "paragraph": "<title>:<n>"}
"""
import json, os, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
data = json.load(open(src))["data"]
with open(os.path.join(out, "paragraphs.jsonl"), "w") as p, open(os.path.join(out, "questions.jsonl"), "w") as q, \
        open(os.path.join(out, "passages.jsonl"), "w") as t:
    for art in data:
        for n, par in enumerate(art["paragraphs"]):
            pid = f"{art['title']}:{n}"
            p.write(json.dumps({"id": pid, "text": par["context"]}) + "\n")
            t.write(json.dumps({"id": pid, "title": art["title"].replace("_", " "), "text": par["context"]}) + "\n")
            for qa in par["qas"]:
                q.write(json.dumps({"id": qa["id"], "text": qa["question"], "paragraph": pid}) + "\n")
