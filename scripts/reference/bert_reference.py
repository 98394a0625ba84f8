# Usage: python3 scripts/reference/bert_reference.py [--models ../shared/models]   (writes the parity fixture)
"""Reference outputs of HF transformers for ragl's BERT parity test.

Writes crates/model/tests/fixtures/bert_reference.json from the checkpoints in
../shared/models (read in place): for all-minilm-l6-v2 and bert-tiny-mlm, the token ids of
24 sentences written for ragl (1 to ~120 words), and, batched with padding (float32, eval
mode): mean-pooled embeddings, CLS states, the hidden states of the first/middle/last real
token, and per-sentence sums and absolute sums of all real-token hidden states; for
bert-tiny-mlm also MLM logits at the [MASK] positions (top-5 ids, logits at 64 fixed
vocabulary ids and the log-sum-exp).

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers
    /tmp/ref/bin/python scripts/reference/bert_reference.py [--models ../shared/models]
"""
import argparse, json, os

import torch
import transformers
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [
    "Hello.",
    "The harbour town was founded in 1312.",
    "Who wrote the first dictionary of the English language?",
    "A tall woman named Ilse ran the inn above the bakery for thirty years.",
    "Rain again.",
    "The stone bridge, built in 1642, has survived three great floods and one war.",
    "In the afternoon we visited the museum, whose oldest object is a wooden boat from the ninth century, found in the mud of the river bank by two children in 1931.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "What is the capital of Australia?",
    "Mount Everest is 8,849 metres high.",
    "The committee's report, published on 3 March 2021, recommended closing the old mine.",
    "Ein Mädchen läuft über die Straße.",
    "Naïve café owners in Zürich charge €4.50 for an espresso!",
    "He said: \"I'll be back at 10:30 a.m.\" and left.",
    " ".join(["The river flows north past the mill, the church and the market square before it reaches the sea."] * 6),
    "Quantum entanglement links the states of two particles regardless of the distance between them.",
    "Tokyo, the capital of Japan, has about fourteen million inhabitants.",
    "Why?",
    "The ferry to the island of Marsk leaves every two hours between April and October.",
    "Shakespeare's Hamlet was probably written between 1599 and 1601.",
    "The 1969 Apollo 11 mission landed the first humans on the Moon.",
    "DNA is a molecule composed of two polynucleotide chains that coil around each other to form a double helix carrying genetic instructions.",
    "She bought bread, cheese, apples and a bottle of wine.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
]

MASKED = [
    "The capital of France is [MASK].",
    "The [MASK] flows north past the mill and reaches the sea.",
    "Shakespeare wrote [MASK] between 1599 and 1601.",
    "She bought bread, [MASK] and a bottle of wine.",
    "Photosynthesis converts light energy into [MASK] energy.",
    "The first humans landed on the [MASK] in 1969.",
]

VOCAB_PROBE = list(range(0, 30522, 30522 // 64))[:64]


def states(model, tok, texts):
    enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    hidden = out.hidden_states[-1]  # last hidden states, [b, s, d]
    mask = enc["attention_mask"]
    res = []
    for i in range(len(texts)):
        n = int(mask[i].sum())
        h = hidden[i, :n]
        mean = (hidden[i] * mask[i, :, None]).sum(0) / mask[i].sum().clamp(min=1e-9)
        res.append(dict(
            ids=enc["input_ids"][i, :n].tolist(),
            mean=mean.tolist(), cls=h[0].tolist(), mid=h[n // 2].tolist(), last=h[n - 1].tolist(),
            sum=float(h.double().sum()), abs_sum=float(h.double().abs().sum()),
        ))
    return enc, out, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="../shared/models")
    a = ap.parse_args()
    torch.manual_seed(0)
    fixture = dict(transformers=transformers.__version__, torch=torch.__version__, sentences=SENTENCES, masked=MASKED,
                   vocab_probe=VOCAB_PROBE)
    d = os.path.join(a.models, "all-minilm-l6-v2")
    tok, model = AutoTokenizer.from_pretrained(d), AutoModel.from_pretrained(d).eval()
    fixture["minilm"] = states(model, tok, SENTENCES)[2]
    d = os.path.join(a.models, "bert-tiny-mlm")
    tok, model = AutoTokenizer.from_pretrained(d), AutoModelForMaskedLM.from_pretrained(d).eval()
    base = model.bert
    fixture["tiny"] = states(base, tok, SENTENCES)[2]
    enc = tok(MASKED, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    mlm = []
    for i in range(len(MASKED)):
        for j in (enc["input_ids"][i] == tok.mask_token_id).nonzero().flatten().tolist():
            l = logits[i, j]
            mlm.append(dict(sentence=i, position=j, top5=l.topk(5).indices.tolist(),
                            probe=l[VOCAB_PROBE].tolist(), logsumexp=float(l.logsumexp(0))))
    fixture["tiny_mlm"] = mlm
    fixture["tiny_mlm_ids"] = [enc["input_ids"][i][: int(enc["attention_mask"][i].sum())].tolist() for i in range(len(MASKED))]
    out = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "model", "tests", "fixtures", "bert_reference.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # 8 significant digits: float32 carries ~7, so nothing the test compares is lost.
    def rounded(x):
        if isinstance(x, float):
            return float(f"{x:.8g}")
        if isinstance(x, list):
            return [rounded(v) for v in x]
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        return x
    with open(out, "w") as f:
        json.dump(rounded(fixture), f, separators=(",", ":"))
    print(f"wrote {out}: {len(SENTENCES)} sentences, {len(mlm)} masked positions")


if __name__ == "__main__":
    main()
