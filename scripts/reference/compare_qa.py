# Usage: python3 scripts/reference/compare_qa.py --ragl BIN --data ../shared/data   (docs/RESULTS.md: QA metrics)
"""Compares `ragl eval qa --json` with the official evaluation code on every QA file in
../shared/data/qa, with perturbed predictions.

The reference functions below are those of the official SQuAD v1.1 script
(evaluate-v1.1.py: normalize_answer, f1_score, exact_match_score,
metric_max_over_ground_truths, evaluate), which NQ-open/EfficientQA and WebQuestions
open-domain evaluation reuse, and DrQA's regex_match_score for CuratedTREC. Predictions are
seeded perturbations of the gold: the gold itself, the gold with case/articles/punctuation
changed, the gold with extra words, a wrong span, the empty string.

    python3 scripts/reference/compare_qa.py --ragl target/release/ragl --data ../shared/data
Exit status 1 if any score differs in any digit.
"""
import argparse, collections, glob, json, os, random, re, string, subprocess, sys, tempfile


# --- official SQuAD v1.1 evaluation (evaluate-v1.1.py) ---------------------------------
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def evaluate(examples, predictions):
    """evaluate() of v1.1 over (key, ground_truths) pairs in gold order."""
    f1 = exact_match = total = 0
    for key, ground_truths in examples:
        total += 1
        prediction = predictions[key]
        exact_match += metric_max_over_ground_truths(exact_match_score, prediction, ground_truths)
        f1 += metric_max_over_ground_truths(f1_score, prediction, ground_truths)
    return {'exact_match': 100.0 * exact_match / total, 'f1': 100.0 * f1 / total}


# --- DrQA regex_match_score -------------------------------------------------------------
def regex_match_score(prediction, pattern):
    try:
        compiled = re.compile(pattern, flags=re.IGNORECASE + re.UNICODE + re.MULTILINE)
    except BaseException:
        return False
    return compiled.match(prediction) is not None


def evaluate_regex(examples, predictions):
    em = sum(max(regex_match_score(predictions[k], p) for p in pats) for k, pats in examples)
    return {'exact_match': 100.0 * em / len(examples), 'f1': None}


# --- perturbed predictions ----------------------------------------------------------------
def perturb(rng, gold, context_words):
    r = rng.random()
    if r < 0.3:
        return gold
    if r < 0.5:  # case, articles, punctuation
        p = gold.upper() if rng.random() < 0.5 else gold.lower()
        return rng.choice(["The ", "a ", "", "An "]) + p + rng.choice([".", "!", "", ",", " ."])
    if r < 0.65:  # extra words around
        return " ".join(rng.sample(context_words, min(2, len(context_words)))) + " " + gold
    if r < 0.75:
        return ""
    n = rng.randint(1, 4)  # wrong span
    i = rng.randint(0, max(0, len(context_words) - n))
    return " ".join(context_words[i:i + n])


def literal_alternative(pattern):
    alt = pattern.split("|")[0]
    return alt if not re.search(r"[\\\[\]()?*+.^$]", alt) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--data", default="../shared/data")
    a = ap.parse_args()
    rng = random.Random(13)
    qa = os.path.join(a.data, "qa")
    tmp = tempfile.mkdtemp(prefix="ragl-qa-")
    rows, bad = [], 0

    def run(gold_path, pred_path, want, label):
        nonlocal bad
        out = subprocess.run([a.ragl, "eval", "qa", "--gold", gold_path, "--pred", pred_path, "--json"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            bad += 1
            print(f"FAILED {label}: {out.stderr.strip()}")
            return
        got = json.loads(out.stdout)
        same = got["exact_match"] == want["exact_match"] and got["f1"] == want["f1"]
        bad += not same
        rows.append((label, got["total"], want["exact_match"], got["exact_match"], want["f1"], got["f1"], same))

    # SQuAD: predictions both as the SQuAD {id: text} JSON and as JSONL by id.
    squad = os.path.join(qa, "squad", "dev-v1.1.json")
    data = json.load(open(squad))["data"]
    examples, preds = [], {}
    for art in data:
        for par in art["paragraphs"]:
            words = par["context"].split()
            for q in par["qas"]:
                golds = [x["text"] for x in q["answers"]]
                examples.append((q["id"], golds))
                preds[q["id"]] = perturb(rng, rng.choice(golds), words)
    want = evaluate(examples, preds)
    p1 = os.path.join(tmp, "squad.pred.json")
    json.dump(preds, open(p1, "w"))
    run(squad, p1, want, "squad/dev-v1.1.json (SQuAD pred JSON)")
    p2 = os.path.join(tmp, "squad.pred.jsonl")
    with open(p2, "w") as f:
        for k, v in preds.items():
            f.write(json.dumps({"id": k, "prediction": v}) + "\n")
    run(squad, p2, want, "squad/dev-v1.1.json (JSONL by id)")

    # NQ-open / EfficientQA: keyed by question.
    for path in sorted(glob.glob(os.path.join(qa, "nq-open", "*.jsonl"))):
        items = [json.loads(l) for l in open(path) if l.strip()]
        examples = [(x["question"], x["answer"]) for x in items]
        preds = {x["question"]: perturb(rng, rng.choice(x["answer"]), x["question"].split()) for x in items}
        want = evaluate(examples, preds)
        p = os.path.join(tmp, "nq.pred.jsonl")
        with open(p, "w") as f:
            for k, v in preds.items():
                f.write(json.dumps({"question": k, "prediction": v}) + "\n")
        run(path, p, want, os.path.relpath(path, qa))

    # WebQuestions: keyed by qId.
    for path in sorted(glob.glob(os.path.join(qa, "webquestions", "*.json"))):
        items = json.load(open(path))
        examples = [(x["qId"], x["answers"]) for x in items]
        preds = {x["qId"]: perturb(rng, rng.choice(x["answers"]), x["qText"].split()) for x in items}
        want = evaluate(examples, preds)
        p = os.path.join(tmp, "wq.pred.jsonl")
        with open(p, "w") as f:
            for k, v in preds.items():
                f.write(json.dumps({"id": k, "prediction": v}) + "\n")
        run(path, p, want, os.path.relpath(path, qa))

    # CuratedTREC: regex answers, DrQA semantics.
    for path in sorted(glob.glob(os.path.join(qa, "curatedtrec", "*.tsv"))):
        items = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8") if l.strip()]
        examples = [(x[0], [x[3]]) for x in items]
        preds = {}
        for x in items:
            lit = literal_alternative(x[3])
            base = lit if lit is not None else x[2]
            preds[x[0]] = perturb(rng, base, x[2].split())
        want = evaluate_regex(examples, preds)
        p = os.path.join(tmp, "trec.pred.jsonl")
        with open(p, "w") as f:
            for k, v in preds.items():
                f.write(json.dumps({"id": k, "prediction": v}) + "\n")
        run(path, p, want, os.path.relpath(path, qa))

    print(f"{'gold file':42s} {'n':>5s} {'EM official':>12s} {'EM ragl':>12s} {'F1 official':>12s} {'F1 ragl':>12s}  same")
    for label, n, e1, e2, f1, f2, same in rows:
        fmt = lambda v: "n/a" if v is None else f"{v:.6f}"
        print(f"{label:42s} {n:5d} {fmt(e1):>12s} {fmt(e2):>12s} {fmt(f1):>12s} {fmt(f2):>12s}  {'yes' if same else 'NO'}")
    print(f"\n{len(rows)} files scored, {bad} differing or failing")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
