# Usage: python scripts/reference/gpt2_parity.py OUT_DIR [--ragl target/release/ragl] [--steps 300] [--text FILE] [--per-line]
"""Builds a small GPT-2 offline with transformers (byte-level BPE learned with `tokenizers` on
English text of ../shared/data/mt, GPT2LMHeadModel of 2 layers, d 64, 4 heads, context 128,
trained --steps steps so that it is far from uniform), saves it as a Hugging Face directory
(model.safetensors, config.json, tokenizer.json), then scores a held-out text with transformers
and with `ragl lm perplexity` under the same windows (stream: windows of 128 tokens every 64,
each token scored once; or one document a line after <|endoftext|>) and compares every scored
token's log-probability (log-softmax of the logits at the target) and the perplexity.
Generated weights are never committed.
"""
import argparse, json, math, os, subprocess, sys

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import GPT2Config, GPT2LMHeadModel


def windows(ids, max_len, stride):
    """(window ids, first scored position) as ragl_lm::windows::cut(ids, 1, ...)."""
    out, begin, scored_to = [], 0, 1
    if len(ids) <= 1:
        return out
    while True:
        end = min(begin + max_len, len(ids))
        if end > scored_to:
            out.append((ids[begin:end], scored_to - begin))
            scored_to = end
        if end == len(ids):
            return out
        begin += stride


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    mt = os.path.join(here, "../../../shared/data/mt")
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--text", default=os.path.join(mt, "newstest/newstest2013.en"))
    ap.add_argument("--lines", type=int, default=300, help="lines of --text scored")
    ap.add_argument("--per-line", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    train_files = [os.path.join(mt, "multi30k/train.en"), os.path.join(mt, "newstest/newstest2012.en")]
    train_text = [l.rstrip("\n") for f in train_files for l in open(f, encoding="utf-8")]
    if not os.path.exists(os.path.join(a.out, "model.safetensors")):
        os.makedirs(a.out, exist_ok=True)
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tr = trainers.BpeTrainer(vocab_size=4000, min_frequency=2, special_tokens=["<|endoftext|>"],
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(train_text, tr)
        tok.save(os.path.join(a.out, "tokenizer.json"))
        cfg = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=64, n_layer=2, n_head=4,
                         bos_token_id=0, eos_token_id=0)
        model = GPT2LMHeadModel(cfg)
        stream = [i for l in train_text for i in [0] + tok.encode(l).ids]
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for step in range(a.steps):
            starts = torch.randint(0, len(stream) - 129, (16,))
            batch = torch.stack([torch.tensor(stream[s:s + 128]) for s in starts.tolist()])
            loss = model(batch, labels=batch).loss
            loss.backward(); opt.step(); opt.zero_grad()
            if step % 50 == 0:
                print(f"step {step} loss {loss.item():.3f}", flush=True)
        model.eval()
        model.save_pretrained(a.out)
    tok = Tokenizer.from_file(os.path.join(a.out, "tokenizer.json"))
    model = GPT2LMHeadModel.from_pretrained(a.out).eval()
    lines = [l.rstrip("\n") for l in open(a.text, encoding="utf-8")][: a.lines]
    lines = [l for l in lines if l.strip()] if a.per_line else lines
    text_path = os.path.join(a.out, "eval.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    if a.per_line:
        docs = [[0] + tok.encode(l).ids for l in lines]
        wins = [w for d in docs for w in windows(d, 128, 64)]
    else:
        wins = windows(tok.encode(open(text_path, encoding="utf-8").read()).ids, 128, 64)
    ref = []
    with torch.no_grad():
        for ids, first in wins:
            lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            for t in range(max(first, 1), len(ids)):
                ref.append(lp[t - 1, ids[t]].item())
    ref = np.array(ref)
    npy = os.path.join(a.out, "ragl-logprobs.npy")
    cmd = [a.ragl, "lm", "perplexity", "--model", a.out, "--text", text_path, "--max-len", "128",
           "--stride", "64", "--json", "--log-probs", npy] + (["--per-line"] if a.per_line else [])
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    got = np.load(npy).reshape(-1)
    ppl_ref = math.exp(-ref.mean())
    print(json.dumps({
        "tokens": [len(ref), len(got)],
        "max_abs_logprob_diff": float(np.abs(got - ref).max()) if len(got) == len(ref) else None,
        "perplexity": [ppl_ref, r["perplexity"]],
        "perplexity_rel_diff": abs(r["perplexity"] - ppl_ref) / ppl_ref,
        "ragl_tokens_per_second": r["tokens_per_second"],
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
