# Usage: python scripts/reference/seq2seq_parity.py MODEL_DIR [--ragl target/release/ragl] [--data ../shared/data/mt] [--n 1000] [--out /tmp/seq2seq-parity]
"""ragl against transformers on one Hugging Face translation checkpoint, Marian or FSMT (made
offline by scripts/reference/marian_build.py or fsmt_build.py, or a downloaded opus-mt or
wmt19 directory):

1. tokenizer ids: every German line of ../shared/data/mt multi30k, newstest and multidomain,
   through the checkpoint's tokenizer (MarianTokenizer, FSMTTokenizer) and `ragl mt
   tokenize`; the count of lines whose ids differ;
2. teacher-forced logits: the first 100 newstest2019 pairs through the model in float32
   and through `ragl mt score --logits`; the largest absolute difference. Targets are
   `text_target=` ids for Marian; for FSMT, whose tokenizer would tokenise a target in the
   source language and map it with the source vocabulary, they are what fairseq trained on
   (Moses in the target language, `vocab-tgt.json`), as ragl encodes them;
3. greedy and beam-5 outputs on --n newstest2019 sentences, `generate` (the checkpoint's
   generation config: max_length, early_stopping, length_penalty, forced/bad words) against
   `ragl mt translate --beam 1/5`; each differing sentence is classed: `tie` when the two
   outputs' teacher-forced scores under transformers are within 1e-4 (either is a best
   answer), `length` when one is a prefix of the other, else `other`.

Prints one JSON object with every number; RESULTS.md quotes it.

    /tmp/venv/bin/python scripts/reference/seq2seq_parity.py /tmp/marian-small --ragl target/release/ragl
    /tmp/venv/bin/python scripts/reference/seq2seq_parity.py /tmp/fsmt-small --ragl target/release/ragl
"""
import argparse, glob, json, os, subprocess, sys, time

import numpy as np
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def ragl(args, exe, stdin=None):
    r = subprocess.run([exe] + args, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"ragl {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/mt"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", default="/tmp/seq2seq-parity")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSeq2SeqLM.from_pretrained(a.model).eval()
    family = model.config.model_type
    report = {"model": a.model, "model_type": family}

    if family == "fsmt":
        import sacremoses
        from transformers.models.fsmt.tokenization_fsmt import remove_non_printing_char, replace_unicode_punct
        lang = tok.tgt_lang
        norm, mt = sacremoses.MosesPunctNormalizer(lang=lang), sacremoses.MosesTokenizer(lang=lang)
        with open(os.path.join(a.model, "vocab-tgt.json"), encoding="utf-8") as f:
            tgt_map = json.load(f)

        def encode(s, t):
            words = mt.tokenize(remove_non_printing_char(norm.normalize(replace_unicode_punct(t))),
                                aggressive_dash_splits=True, return_str=False, escape=True)
            labels = [tgt_map.get(p, tgt_map["<unk>"]) for w in words for p in tok.bpe(w).split(" ")]
            enc = tok([s], return_tensors="pt")
            eos = model.config.eos_token_id
            enc["labels"] = torch.tensor([labels + [eos]])
            # FSMT shifts the *source* when no decoder input is given, and drops the causal
            # mask when the cache is on.
            enc["decoder_input_ids"] = torch.tensor([[eos] + labels])
            enc["use_cache"] = False
            return enc
    else:
        def encode(s, t):
            return tok([s], text_target=[t], return_tensors="pt")

    # 1. tokenizer ids
    files = sorted(glob.glob(f"{a.data}/multi30k/*.de") + glob.glob(f"{a.data}/newstest/*.de")
                   + glob.glob(f"{a.data}/multidomain/*/*.de"))
    src = [l for f in files for l in lines(f)]
    path = f"{a.out}/all.de"
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(src) + "\n")
    got = ragl(["mt", "tokenize", "--model", a.model, "-i", path, "-q"], a.ragl).splitlines()
    want = [" ".join(map(str, tok(s)["input_ids"])) for s in src]
    diff = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    report["tokenizer"] = {"lines": len(src), "files": len(files), "differ": len(diff),
                           "first_differences": [src[i] for i in diff[:5]]}

    # 2. teacher-forced logits
    ns_de = lines(f"{a.data}/newstest/newstest2019-deen.de")
    ns_en = lines(f"{a.data}/newstest/newstest2019-deen.en")
    k = 100
    with open(f"{a.out}/tf.de", "w") as f:
        f.write("\n".join(ns_de[:k]) + "\n")
    with open(f"{a.out}/tf.en", "w") as f:
        f.write("\n".join(ns_en[:k]) + "\n")
    ragl(["mt", "score", "--model", a.model, "--source", f"{a.out}/tf.de", "--target", f"{a.out}/tf.en",
          "--logits", f"{a.out}/logits.npy", "-o", f"{a.out}/score.jsonl", "-q"], a.ragl)
    mine = np.load(f"{a.out}/logits.npy")
    ref = []
    with torch.no_grad():
        for s, t in zip(ns_de[:k], ns_en[:k]):
            enc = encode(s, t)
            labels = enc.pop("labels") if family == "fsmt" else None
            ref.append(model(**enc).logits[0].numpy())
    ref = np.concatenate(ref)
    report["logits"] = {"sentences": k, "positions": int(ref.shape[0]),
                        "shape_match": list(ref.shape) == list(mine.shape),
                        "max_abs_diff": float(np.abs(ref - mine).max()) if ref.shape == mine.shape else None,
                        "max_abs_logit": float(np.abs(ref).max())}

    # 3. greedy and beam-5
    n = min(a.n, len(ns_de))
    src_n = ns_de[:n]
    with open(f"{a.out}/dec.de", "w") as f:
        f.write("\n".join(src_n) + "\n")

    def hf_score(s, out_text):
        enc = encode(s, out_text)
        ids = enc.pop("labels")[0] if family == "fsmt" else enc["labels"][0]
        with torch.no_grad():
            lp = torch.log_softmax(model(**enc).logits[0], -1)
        return float(lp[torch.arange(len(ids)), ids].sum()), len(ids)

    for name, beams in (("greedy", 1), ("beam5", 5)):
        t0 = time.time()
        hyp = []
        for i in range(0, n, 16):
            batch = tok(src_n[i:i + 16], return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(**batch, num_beams=beams)
            hyp += tok.batch_decode(out, skip_special_tokens=True)
        hf_secs = time.time() - t0
        t0 = time.time()
        mine = ragl(["mt", "translate", "--model", a.model, "-i", f"{a.out}/dec.de", "--beam", str(beams),
                     "--batch-sentences", "16", "-q"], a.ragl).splitlines()
        ragl_secs = time.time() - t0
        classes = {"tie": 0, "length": 0, "other": 0}
        examples = []
        for s, h, m in zip(src_n, hyp, mine):
            if h == m:
                continue
            (sh, lh), (sm, lm) = hf_score(s, h), hf_score(s, m)
            lp = (model.generation_config.length_penalty or 1.0) if beams > 1 else 0.0
            if abs(sh / lh ** lp - sm / lm ** lp) < 1e-4:
                classes["tie"] += 1
            elif h.startswith(m) or m.startswith(h):
                classes["length"] += 1
            else:
                classes["other"] += 1
            if len(examples) < 3:
                examples.append({"src": s, "transformers": h, "ragl": m,
                                 "scores": [sh / lh ** lp, sm / lm ** lp]})
        same = sum(h == m for h, m in zip(hyp, mine))
        report[name] = {"sentences": n, "identical": same, "identical_pct": round(100 * same / n, 2),
                        "differences": classes, "examples": examples,
                        "seconds_transformers": round(hf_secs, 1), "seconds_ragl": round(ragl_secs, 1)}
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
