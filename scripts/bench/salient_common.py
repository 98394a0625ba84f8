# Usage: imported by salient_eval.py and salient_misses.py; not run on its own.
"""What salient_eval.py and salient_misses.py share: the SQuAD paragraphs as passages,
an annotator run over them, and the answer spans counted the same way (stdlib only)."""

import json, os, subprocess, tempfile


def squad_passages(path):
    """{passage id: SQuAD paragraph} and the passages JSONL rows `mask annotate` reads."""
    ctx, rows = {}, []
    for art in json.load(open(path))["data"]:
        for n, p in enumerate(art["paragraphs"]):
            pid = f"{art['title']}:{n}"
            ctx[pid] = p
            rows.append({"id": pid, "title": art["title"].replace("_", " "), "text": p["context"]})
    return ctx, rows


def annotate(rows, ragl=None, annotator=None):
    """{id: spans} from `ragl mask annotate`, or from a shell command that reads passages
    JSONL on stdin and writes the same format on stdout."""
    tmp = tempfile.mkdtemp()
    inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
    with open(inp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    if annotator:
        with open(inp) as fi, open(out, "w") as fo:
            subprocess.run(annotator, shell=True, stdin=fi, stdout=fo, check=True)
    else:
        subprocess.run([ragl, "mask", "annotate", "--input", inp, "--output", out], check=True,
                       capture_output=True)
    return {r["id"]: r["spans"] for r in map(json.loads, open(out))}


def answers(p):
    """A paragraph's answer spans (start, end, text), each distinct per question."""
    for qa in p["qas"]:
        seen = set()
        for x in qa["answers"]:
            s, e = x["answer_start"], x["answer_start"] + len(x["text"])
            if (s, e) not in seen:
                seen.add((s, e))
                yield s, e, x["text"]
