# Usage: python scripts/reference/marian_build.py OUT_DIR [--data ../shared/data/mt] [--steps 400] [--shape small|opus-mt]
"""Builds a small, trained Hugging Face MarianMT checkpoint offline, for ragl's Marian parity
checks (scripts/reference/seq2seq_parity.py) and speed benchmarks.

Two SentencePiece unigram models (`source.spm` from the German, `target.spm` from the
English side of Multi30k train + newstest 2008-2012, nmt_nfkc as opus-mt's) and a joint
`vocab.json` laid out as opus-mt's (`</s>` 0, `<unk>` 1, source pieces, then target-only
pieces, `<pad>` last), a MarianConfig with opus-mt's conventions (post-norm, swish,
scale_embedding, static sinusoidal positions, tied embeddings, `final_logits_bias`,
decoder start = pad, `bad_words_ids` = [[pad]]), trained for a few hundred steps on Multi30k
so that decoding is not degenerate, then written with `save_pretrained` (safetensors).
`--shape opus-mt` gives opus-mt-de-en's exact shape (d_model 512, 6+6 layers, 8 heads, ffn
2048, vocab 58,101: the joint vocabulary padded with unused pieces) for speed runs.

The weights are generated here, on the user's machine, and never committed.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers sentencepiece
    /tmp/venv/bin/python scripts/reference/marian_build.py /tmp/marian-small
"""
import argparse, json, os, random, time

import sentencepiece as spm
import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer, GenerationConfig


def lines(path, limit=None):
    with open(path, encoding="utf-8") as f:
        out = [l.rstrip("\n") for l in f]
    return out[:limit] if limit else out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/mt"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--spm-vocab", type=int, default=4000)
    ap.add_argument("--shape", choices=["small", "opus-mt"], default="small")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    d = a.data
    years = ["news-test2008"] + [f"newstest{y}" for y in range(2009, 2013)]
    de = lines(f"{d}/multi30k/train.de") + sum((lines(f"{d}/newstest/{y}.de") for y in years), [])
    en = lines(f"{d}/multi30k/train.en") + sum((lines(f"{d}/newstest/{y}.en") for y in years), [])
    tmp = os.path.join(a.out, "_spm")
    os.makedirs(tmp, exist_ok=True)
    for side, text in (("source", de), ("target", en)):
        with open(f"{tmp}/{side}.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(text) + "\n")
        spm.SentencePieceTrainer.train(
            input=f"{tmp}/{side}.txt", model_prefix=f"{tmp}/{side}", vocab_size=a.spm_vocab,
            model_type="unigram", character_coverage=0.9995, normalization_rule_name="nmt_nfkc",
            unk_id=1, bos_id=-1, eos_id=0, pad_id=-1, unk_piece="<unk>", eos_piece="</s>",
            minloglevel=2, num_threads=2, input_sentence_size=200000, shuffle_input_sentence=True,
        )
        os.replace(f"{tmp}/{side}.model", f"{a.out}/{side}.spm")
    vocab = {"</s>": 0, "<unk>": 1}
    for side in ("source", "target"):
        sp = spm.SentencePieceProcessor(model_file=f"{a.out}/{side}.spm")
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if p not in vocab:
                vocab[p] = len(vocab)
    if a.shape == "opus-mt":
        while len(vocab) < 58100:
            vocab[f"<unused{len(vocab)}>"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    with open(f"{a.out}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    for fn in os.listdir(tmp):
        os.remove(os.path.join(tmp, fn))
    os.rmdir(tmp)

    tok = MarianTokenizer(f"{a.out}/source.spm", f"{a.out}/target.spm", f"{a.out}/vocab.json",
                          source_lang="de", target_lang="en")
    pad = vocab["<pad>"]
    shape = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)
    if a.shape == "opus-mt":
        shape = dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                     decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048)
    cfg = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), max_position_embeddings=512,
        activation_function="swish", scale_embedding=True, static_position_embeddings=True,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
        pad_token_id=pad, eos_token_id=0, bos_token_id=0, decoder_start_token_id=pad,
        forced_eos_token_id=0, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
        **shape,
    )
    model = MarianMTModel(cfg)
    pairs = list(zip(lines(f"{d}/multi30k/train.de"), lines(f"{d}/multi30k/train.en")))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3 if a.shape == "small" else 3e-4)
    model.train()
    t0 = time.time()
    for step in range(a.steps):
        batch = random.sample(pairs, 64)
        enc = tok([s for s, _ in batch], text_target=[t for _, t in batch], return_tensors="pt",
                  padding=True, truncation=True, max_length=64)
        enc["labels"][enc["labels"] == pad] = -100
        loss = model(**enc).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        # final_logits_bias is a buffer in transformers; nudge it off zero so that parity
        # checks see it used.
        if step == 0:
            with torch.no_grad():
                model.final_logits_bias.normal_(0, 0.1)
        if step % 50 == 0 or step == a.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad, eos_token_id=0,
        forced_eos_token_id=0, max_length=128, num_beams=4, pad_token_id=pad,
    )
    model.save_pretrained(a.out)
    tok.save_pretrained(a.out)
    print(f"wrote {a.out}: vocab {len(vocab)}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
