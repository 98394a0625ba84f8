# Usage: PYTHONPATH=/tmp/tf446 python scripts/reference/realm_parity.py MODEL_DIR QUESTIONS.jsonl [--ragl target/release/ragl] [--n 200]
"""ragl against transformers' RealmForOpenQA (the last release that has it, 4.46.3, on the path
first) on one REALM open-QA checkpoint (made offline by scripts/reference/realm_build.py, or a
downloaded realm-orqa-nq-openqa directory), question by question:

- retrieval: the top reader_beam_size block ids (identical?) and their scores q·block_emb
  (largest difference), from `RealmEmbedder` and `block_emb`;
- the answer's score (best reader span logit + its block's retrieval score; largest
  difference) and the answer string as `tokenizer.decode(predicted_answer_ids)` writes it
  (identical?); each differing answer is checked for a near-tie (the two spans' scores under
  transformers within 1e-4).

ragl's side is one `ragl predict-qa --checkpoint MODEL_DIR` run. Prints one JSON object.

    PYTHONPATH=/tmp/tf446 /tmp/venv/bin/python scripts/reference/realm_parity.py /tmp/realm-tiny /tmp/realm-q.jsonl --ragl target/release/ragl
"""
import argparse, json, subprocess, sys, time

import torch
from transformers import AutoTokenizer, RealmForOpenQA, RealmRetriever


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("questions")
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", default="/tmp/realm-parity.jsonl")
    a = ap.parse_args()
    torch.set_num_threads(2)
    qs = [json.loads(l) for l in open(a.questions, encoding="utf-8")][: a.n]
    with open(a.out + ".in", "w", encoding="utf-8") as f:
        for q in qs:
            f.write(json.dumps(q) + "\n")
    t0 = time.time()
    r = subprocess.run([a.ragl, "predict-qa", "--checkpoint", a.model, "-i", a.out + ".in", "-o", a.out],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    ragl_secs = time.time() - t0
    mine = [json.loads(l) for l in open(a.out, encoding="utf-8")]

    retriever = RealmRetriever.from_pretrained(a.model)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = RealmForOpenQA.from_pretrained(a.model, retriever=retriever).eval()
    captured = {}
    # A copy: RealmReader adds the retrieval scores to these logits in place.
    model.reader.qa_outputs.register_forward_hook(lambda m, i, o: captured.update(logits=o[0].clone()))
    ids_same = answers_same = 0
    max_ret = max_score = 0.0
    diffs = []
    t0 = time.time()
    for q, m in zip(qs, mine):
        enc = tok([q["question"]], return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, return_dict=True)
            qp = model.embedder(**enc).projected_score[0]
            scores = model.block_emb @ qp
            top = torch.topk(scores, k=model.config.reader_beam_size)
        ids = top.indices.tolist()
        ids_same += ids == m["retrieved"]
        if ids == m["retrieved"]:
            max_ret = max(max_ret, max(abs(x - y) for x, y in zip(top.values.tolist(), m["retrieval_scores"])))
        total = captured["logits"] + top.values[:, None]
        best = float(total.max())
        max_score = max(max_score, abs(best - m["score"]))
        ans = tok.decode(out.predicted_answer_ids)
        if ans == m["prediction"]:
            answers_same += 1
        else:
            diffs.append({"question": q["question"], "transformers": ans, "ragl": m["prediction"],
                          "score_gap": abs(best - m["score"])})
    hf_secs = time.time() - t0
    n = len(qs)
    report = {
        "model": a.model, "questions": n,
        "retrieved_ids_identical": ids_same,
        "retrieval_score_max_abs_diff": max_ret,
        "answer_score_max_abs_diff": max_score,
        "answers_identical": answers_same, "answers_identical_pct": round(100 * answers_same / n, 2),
        "differences": diffs[:10],
        "near_ties": sum(d["score_gap"] < 1e-4 for d in diffs),
        "seconds_ragl_process": round(ragl_secs, 1), "seconds_transformers": round(hf_secs, 1),
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
