# Usage: python scripts/reference/fsmt_build.py OUT_DIR [--data ../shared/data/mt] [--steps 400] [--shape small|wmt19]
"""Builds a small, trained Hugging Face FSMT checkpoint offline (the architecture of
facebook/wmt19-de-en), for ragl's FSMT parity checks (scripts/reference/seq2seq_parity.py)
and speed runs.

The text goes through FSMTTokenizer's own Moses pipeline (sacremoses: Unicode punctuation,
punctuation normalisation, tokenisation with aggressive dash splits and XML escapes); a
joint BPE with `</w>` word ends is learned on the Moses-tokenised German and English of
Multi30k train + newstest 2008-2012 (the `tokenizers` library's trainer, `merges.txt` as
FSMT ships it), and the two maps are separate, as in wmt19-ru-en: `vocab-src.json` holds the
subwords the German uses at least twice, `vocab-tgt.json` those of the English (so they
differ in size, and rare subwords are `<unk>`), each after `<s> <pad> </s> <unk>`. The
model is an FSMTConfig with wmt19-de-en's conventions (post-norm, ReLU, scale_embedding,
fairseq sinusoids, untied source embedding and output projection, 5 beams, early stopping,
length penalty 1.1), trained for a few hundred steps on Multi30k (targets tokenised in the
target language and looked up in the target map, as fairseq prepared them), then written
with `save_pretrained` (safetensors). `--shape wmt19` gives wmt19-de-en's exact shape
(d_model 1024, 6+6 layers, 16 heads, ffn 8192, vocabularies padded to 42,024) for speed runs.

The weights are generated here, on the user's machine, and never committed.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers sacremoses tokenizers
    /tmp/venv/bin/python scripts/reference/fsmt_build.py /tmp/fsmt-small
"""
import argparse, collections, json, os, random, time

import sacremoses
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import FSMTConfig, FSMTForConditionalGeneration, FSMTTokenizer, GenerationConfig
from transformers.models.fsmt.tokenization_fsmt import remove_non_printing_char, replace_unicode_punct

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def moses(texts, lang):
    norm, tok = sacremoses.MosesPunctNormalizer(lang=lang), sacremoses.MosesTokenizer(lang=lang)
    out = []
    for t in texts:
        t = remove_non_printing_char(norm.normalize(replace_unicode_punct(t)))
        out.append(tok.tokenize(t, aggressive_dash_splits=True, return_str=False, escape=True))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/mt"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--bpe-vocab", type=int, default=6000)
    ap.add_argument("--shape", choices=["small", "wmt19"], default="small")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    d = a.data
    years = ["news-test2008"] + [f"newstest{y}" for y in range(2009, 2013)]
    de = lines(f"{d}/multi30k/train.de") + sum((lines(f"{d}/newstest/{y}.de") for y in years), [])
    en = lines(f"{d}/multi30k/train.en") + sum((lines(f"{d}/newstest/{y}.en") for y in years), [])
    de_tok, en_tok = moses(de, "de"), moses(en, "en")

    bpe = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=a.bpe_vocab, min_frequency=2, end_of_word_suffix="</w>",
                                  show_progress=False)
    bpe.train_from_iterator((" ".join(t) for t in de_tok + en_tok), trainer)
    merges = json.loads(bpe.to_str())["model"]["merges"]
    with open(f"{a.out}/merges.txt", "w", encoding="utf-8") as f:
        for m in merges:
            f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
    # A throwaway tokenizer over placeholder maps, for its `bpe`.
    for side in ("src", "tgt"):
        with open(f"{a.out}/vocab-{side}.json", "w", encoding="utf-8") as f:
            json.dump({s: i for i, s in enumerate(SPECIALS)}, f)
    seg = FSMTTokenizer(langs=["de", "en"], src_vocab_file=f"{a.out}/vocab-src.json",
                        tgt_vocab_file=f"{a.out}/vocab-tgt.json", merges_file=f"{a.out}/merges.txt")
    sizes = {}
    for side, toks in (("src", de_tok), ("tgt", en_tok)):
        count = collections.Counter(p for sent in toks for w in sent for p in seg.bpe(w).split(" "))
        vocab = {s: i for i, s in enumerate(SPECIALS)}
        for p, c in count.most_common():
            if c >= 2 and p not in vocab:
                vocab[p] = len(vocab)
        if a.shape == "wmt19":
            while len(vocab) < 42024:
                vocab[f"<unused{len(vocab)}>"] = len(vocab)
        sizes[side] = len(vocab)
        with open(f"{a.out}/vocab-{side}.json", "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False, indent=2)
    with open(f"{a.out}/tokenizer_config.json", "w") as f:
        json.dump({"langs": ["de", "en"], "model_max_length": 1024, "do_lower_case": False,
                   "tokenizer_class": "FSMTTokenizer"}, f, indent=2)
    tok = FSMTTokenizer.from_pretrained(a.out)
    tgt_map = json.load(open(f"{a.out}/vocab-tgt.json", encoding="utf-8"))

    def target_ids(text):
        # What fairseq trained on: Moses in the target language, the target map.
        words = moses([text], "en")[0]
        return [tgt_map.get(p, 3) for w in words for p in tok.bpe(w).split(" ")] + [2]

    shape = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)
    if a.shape == "wmt19":
        shape = dict(d_model=1024, encoder_layers=6, decoder_layers=6, encoder_attention_heads=16,
                     decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192)
    cfg = FSMTConfig(
        langs=["de", "en"], src_vocab_size=sizes["src"], tgt_vocab_size=sizes["tgt"],
        activation_function="relu", max_position_embeddings=1024, scale_embedding=True,
        tie_word_embeddings=False, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, forced_eos_token_id=2, dropout=0.1, attention_dropout=0.0,
        num_beams=5, early_stopping=True, length_penalty=1.1, max_length=200, **shape,
    )
    model = FSMTForConditionalGeneration(cfg)
    pairs = list(zip(lines(f"{d}/multi30k/train.de"), lines(f"{d}/multi30k/train.en")))
    # The sinusoid tables are parameters in transformers 5 (frozen in fairseq and 4.x).
    params = [p for n, p in model.named_parameters() if "embed_positions" not in n]
    opt = torch.optim.AdamW(params, lr=1e-3 if a.shape == "small" else 3e-4)
    model.train()
    t0 = time.time()
    for step in range(a.steps):
        batch = random.sample(pairs, 64)
        enc = tok([s for s, _ in batch], return_tensors="pt", padding=True, truncation=True, max_length=64)
        tgts = [target_ids(t)[:64] for _, t in batch]
        n = max(map(len, tgts))
        labels = torch.tensor([t + [1] * (n - len(t)) for t in tgts])
        dec_in = torch.cat([torch.full((len(tgts), 1), 2), labels[:, :-1]], 1)
        # use_cache=False: with the cache on, FSMT's forward drops the causal mask.
        logits = model(**enc, decoder_input_ids=dec_in, decoder_attention_mask=dec_in.ne(1),
                       use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=1)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 50 == 0 or step == a.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=0, decoder_start_token_id=2, eos_token_id=2, forced_eos_token_id=2,
        pad_token_id=1, max_length=200, num_beams=5, early_stopping=True, length_penalty=1.1,
    )
    model.save_pretrained(a.out)
    print(f"wrote {a.out}: vocab {sizes['src']} / {sizes['tgt']}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
