# Usage: python scripts/bench/seq2seq_speed.py MODEL_DIR [--ragl target/release/ragl] [--data ../shared/data/mt] [--n 1000] [--beam 5] [--batch 16] [--threads 2] [--runs 3] [--max-len N] [--systems transformers,ctranslate2,ragl]
"""Translation speed of one Hugging Face Marian or FSMT checkpoint in three systems, same sentences
(the first --n of newstest2019 de), beam, batch and threads, on CPU:

- transformers `generate` (float32, torch.set_num_threads),
- CTranslate2 float32 (the checkpoint converted offline with its transformers converter;
  `translate_batch` with `max_batch_size`, `intra_threads`), detokenised by the checkpoint's
  tokenizer (Marian only here),
- `ragl mt translate` as a whole process (model load included), RAYON_NUM_THREADS=threads.

Each is run --runs times; the median wall time is reported as sentences/s, with the ratios
ragl/transformers and ragl/CTranslate2, and how many outputs agree with transformers'.
`--max-len N` caps every system's output at N tokens (`max_length` N + 1 in transformers, which
counts the start token), for random models that never end a sentence: then every system decodes
the same number of steps and the ratio is the cost of a step. Make an opus-mt-de-en-shaped model
with scripts/reference/marian_build.py --shape opus-mt, a wmt19-de-en-shaped one with
scripts/reference/fsmt_build.py --shape wmt19 --steps 0.

    /tmp/venv/bin/pip install ctranslate2
    /tmp/venv/bin/python scripts/bench/seq2seq_speed.py /tmp/marian-opus --ragl target/release/ragl
    /tmp/venv/bin/python scripts/bench/seq2seq_speed.py /tmp/fsmt-wmt19 --n 32 --max-len 64 --systems transformers,ragl
"""
import argparse, json, os, statistics, subprocess, sys, time

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/mt"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="transformers,ctranslate2,ragl")
    ap.add_argument("--max-len", type=int, default=None)
    ap.add_argument("--work", default="/tmp/seq2seq-speed")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    systems = a.systems.split(",")
    with open(f"{a.data}/newstest/newstest2019-deen.de", encoding="utf-8") as f:
        src = [l.rstrip("\n") for l in f][: a.n]
    src_path = f"{a.work}/src.de"
    with open(src_path, "w", encoding="utf-8") as f:
        f.write("\n".join(src) + "\n")
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    out, times = {}, {}

    if "transformers" in systems:
        model = AutoModelForSeq2SeqLM.from_pretrained(a.model).eval()
        cap = {} if a.max_len is None else {"max_length": a.max_len + 1}

        def hf():
            hyp = []
            for i in range(0, len(src), a.batch):
                b = tok(src[i:i + a.batch], return_tensors="pt", padding=True)
                with torch.no_grad():
                    o = model.generate(**b, num_beams=a.beam, **cap)
                hyp += tok.batch_decode(o, skip_special_tokens=True)
            return hyp
        times["transformers"], out["transformers"] = timed(hf, a.runs)

    if "ctranslate2" in systems:
        import ctranslate2
        ct = f"{a.work}/ct2"
        if not os.path.isdir(ct):
            conv = os.path.join(os.path.dirname(sys.executable), "ct2-transformers-converter")
            r = subprocess.run([conv, "--model", a.model, "--output_dir", ct, "--quantization",
                                "float32", "--force"], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"ct2-transformers-converter failed:\n{r.stderr}")
        tr = ctranslate2.Translator(ct, device="cpu", compute_type="float32", intra_threads=a.threads,
                                    inter_threads=1)
        gen = AutoModelForSeq2SeqLM.from_pretrained(a.model).generation_config
        max_len = (gen.max_length or 512) - 1 if a.max_len is None else a.max_len

        def ct2():
            toks = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in src]
            res = tr.translate_batch(toks, beam_size=a.beam, max_batch_size=a.batch,
                                     max_decoding_length=max_len, length_penalty=gen.length_penalty or 1.0)
            return [tok.convert_tokens_to_string(r.hypotheses[0]) for r in res]
        times["ctranslate2"], out["ctranslate2"] = timed(ct2, a.runs)

    if "ragl" in systems:
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))

        def rg():
            cap = [] if a.max_len is None else ["--max-len", str(a.max_len)]
            r = subprocess.run([a.ragl, "mt", "translate", "--model", a.model, "-i", src_path, "--beam",
                                str(a.beam), "--batch-sentences", str(a.batch), "-q"] + cap,
                               capture_output=True, text=True, env=env)
            if r.returncode:
                sys.exit(r.stderr)
            return r.stdout.splitlines()
        times["ragl"], out["ragl"] = timed(rg, a.runs)

    report = {"model": a.model, "sentences": len(src), "beam": a.beam, "batch": a.batch,
              "threads": a.threads, "runs": a.runs, "max_len": a.max_len}
    for k, v in times.items():
        report[k] = {"median_s": round(statistics.median(v), 2), "all_s": [round(x, 2) for x in v],
                     "sentences_per_s": round(len(src) / statistics.median(v), 2)}
        if "transformers" in out and k != "transformers":
            report[k]["identical_to_transformers"] = sum(x == y for x, y in zip(out[k], out["transformers"]))
    for peer in ("transformers", "ctranslate2"):
        if "ragl" in times and peer in times:
            report[f"ragl_speedup_vs_{peer}"] = round(statistics.median(times[peer]) / statistics.median(times["ragl"]), 2)
    print(json.dumps(report, indent=1))


def timed(f, runs):
    ts, res = [], None
    for _ in range(runs):
        t0 = time.time()
        res = f()
        ts.append(time.time() - t0)
    return ts, res


if __name__ == "__main__":
    main()
