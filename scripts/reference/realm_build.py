# Usage: PYTHONPATH=/tmp/tf446 python scripts/reference/realm_build.py OUT_DIR [--data ../shared/data/qa/squad/dev-v1.1.json] [--vocab ../shared/models/all-minilm-l6-v2/vocab.txt] [--blocks 300] [--steps 300] [--questions Q.jsonl]
"""Builds a tiny, trained REALM open-QA checkpoint offline, laid out as google/realm-orqa-nq-openqa
is (RealmForOpenQA weights with `block_emb` inside, `block_records.npy`, the tokenizer), plus
the stand-alone embedder as google/realm-cc-news-pretrained-embedder is (`OUT_DIR/embedder`),
for ragl's REALM parity checks (scripts/reference/realm_parity.py).

REALM left transformers after the 4.4x series: install the last release that has it into a
directory of its own and put it first on the path (`pip install --target /tmp/tf446 --no-deps
transformers==4.46.3 "tokenizers<0.21" huggingface_hub==0.26.5`; torch from the main venv).

Blocks are the first --blocks paragraphs of SQuAD dev (their text as UTF-8 bytes in an object
array, as REALM's block records are); the vocabulary is bert-base-uncased's WordPiece one (all-MiniLM-L6-v2's vocab.txt); the
config is REALM's with small sizes (hidden 64, 2 layers, projection 32, span hidden 32) and its
own conventions (gelu_new, reader LayerNorm eps 1e-3, max span width 10, 320 reader tokens, 5
blocks read), its weights drawn at initializer_range 0.2 (at BERT's 0.02 a random tiny BERT
maps every text to nearly one vector, and every block ties). Training is a few hundred steps of
the reader alone on RealmForOpenQA's own loss, SQuAD questions about those paragraphs with the
gold paragraph forced among the five blocks read, so that span scores sit far from ties too
(the embedder stays random: trained through the retriever loss with a forced gold block, a
tiny one collapses onto one vector). The weights are
written as `pytorch_model.bin`, as the hub's REALM checkpoints are (transformers will not write
REALM as safetensors: its MLM biases are shared tensors). Generated weights are never committed.
"""
import argparse, json, os, random, shutil

import numpy as np
import torch
from transformers import RealmConfig, RealmForOpenQA, RealmRetriever, RealmTokenizer


def main():
    here = os.path.dirname(__file__)
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/data/qa/squad/dev-v1.1.json"))
    ap.add_argument("--vocab", default=os.path.join(here, "../../../shared/models/all-minilm-l6-v2/vocab.txt"))
    ap.add_argument("--blocks", type=int, default=300)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--questions", help="also write the questions about the blocks as NQ-open JSONL (for realm_parity.py)")
    a = ap.parse_args()
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    squad = json.load(open(a.data, encoding="utf-8"))["data"]
    paras, qas = [], []
    for art in squad:
        for p in art["paragraphs"]:
            if len(paras) == a.blocks:
                break
            for qa in p["qas"]:
                qas.append((qa["question"], [x["text"] for x in qa["answers"]], len(paras)))
            paras.append(p["context"])
    if a.questions:
        with open(a.questions, "w", encoding="utf-8") as f:
            for q, answers, _ in qas:
                f.write(json.dumps({"question": q, "answer": answers}) + "\n")
    shutil.copy(a.vocab, os.path.join(a.out, "vocab.txt"))
    tok = RealmTokenizer(os.path.join(a.out, "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(a.out)
    records = np.array([p.encode("utf-8") for p in paras], dtype=object)
    retriever = RealmRetriever(records, tok)
    cfg = RealmConfig(
        vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, retriever_proj_size=32, span_hidden_size=32, max_span_width=10,
        reader_seq_len=320, reader_beam_size=5, searcher_beam_size=5, num_block_records=len(paras),
        hidden_act="gelu_new", reader_layer_norm_eps=1e-3, max_position_embeddings=512,
        initializer_range=0.2,
    )
    model = RealmForOpenQA(cfg, retriever=retriever)

    def refresh():
        with torch.no_grad():
            embs = []
            for i in range(0, len(paras), 32):
                enc = tok(paras[i:i + 32], padding=True, truncation=True, max_length=288, return_tensors="pt")
                embs.append(model.embedder(**enc).projected_score)
            model.block_emb.copy_(torch.cat(embs))

    model.train()
    # The reader only: with weights drawn at initializer_range 0.2 the random embedder's
    # scores are well apart, and a retriever loss with a forced gold block would collapse
    # it onto one vector.
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.startswith("reader.")], lr=1e-3)
    refresh()
    done = 0
    for step in range(a.steps):
        q, answers, gold = random.choice(qas)
        enc = tok([q], return_tensors="pt")
        ans = tok(answers, add_special_tokens=False, return_token_type_ids=False,
                  return_attention_mask=False).input_ids
        # The gold paragraph is forced among the blocks read (a random retriever would
        # rarely find it, and the loss is zero when no block holds the answer).
        saved = model.block_emb[gold].clone()
        with torch.no_grad():
            qp = model.embedder(**enc).projected_score[0]
            model.block_emb[gold] = qp * 1e3
        out = model(**enc, answer_ids=ans, return_dict=True)
        with torch.no_grad():
            model.block_emb[gold] = saved
        loss = out.reader_output.loss
        if loss is not None and loss.requires_grad:
            loss.backward()
            opt.step()
            opt.zero_grad()
            done += 1
        if step % 50 == 0:
            print(f"step {step} loss {None if loss is None else round(loss.item(), 3)}", flush=True)
    model.eval()
    refresh()
    # transformers refuses safetensors for REALM's shared MLM biases; the hub's checkpoints are
    # pytorch_model.bin too.
    model.save_pretrained(a.out, safe_serialization=False)
    retriever.save_pretrained(a.out)
    model.embedder.save_pretrained(os.path.join(a.out, "embedder"), safe_serialization=False)
    tok.save_pretrained(os.path.join(a.out, "embedder"))
    print(f"wrote {a.out}: {len(paras)} blocks, {done} training steps, vocab {tok.vocab_size}")


if __name__ == "__main__":
    main()
