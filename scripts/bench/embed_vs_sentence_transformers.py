# Usage: python3 scripts/bench/embed_vs_sentence_transformers.py --paragraphs P.jsonl [--ragl BIN] [--model DIR]
#        [--threads 2] [--repeats 3]   (docs/RESULTS.md: BERT parity and embedding speed)
"""Throughput of encoding all SQuAD paragraphs with all-MiniLM-L6-v2 (max length 256, batch
32): sentence-transformers `encode(batch_size=32)` on PyTorch CPU vs `ragl embed`, same
machine, same run, both limited to the same number of threads. Reports passages/s of the
encoding itself (model loading excluded for both: ragl prints its own encode time) over
REPEATS alternating runs, and the max |difference| between the two embedding matrices.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch sentence-transformers
    /tmp/ref/bin/python scripts/bench/embed_vs_sentence_transformers.py \
        --ragl target/release/ragl --model ../shared/models/all-minilm-l6-v2 \
        --paragraphs /tmp/squad/paragraphs.jsonl --threads 2 --repeats 3
"""
import argparse, json, os, re, statistics, subprocess, tempfile, time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ragl", default="target/release/ragl")
    ap.add_argument("--model", default="../shared/models/all-minilm-l6-v2")
    ap.add_argument("--paragraphs", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", help="keep ragl's last output here (.npy; ids beside it)")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch
    torch.set_num_threads(a.threads)
    from sentence_transformers import SentenceTransformer

    texts = [json.loads(l)["text"] for l in open(a.paragraphs)]
    st = SentenceTransformer(a.model, device="cpu")
    st.max_seq_length = 256
    out = a.keep or os.path.join(tempfile.mkdtemp(), "p.npy")
    st_rates, ragl_rates = [], []
    for _ in range(a.repeats):
        t = time.perf_counter()
        ref = st.encode(texts, batch_size=32, convert_to_numpy=True)
        st_rates.append(len(texts) / (time.perf_counter() - t))
        r = subprocess.run([a.ragl, "--threads", str(a.threads), "embed", "--model", a.model, "--input", a.paragraphs,
                            "--output", out, "--max-len", "256", "--batch-size", "32", "--pooling", "mean"],
                           capture_output=True, text=True, check=True)
        ragl_rates.append(float(re.search(r"([0-9.]+) texts/s", r.stderr).group(1)))
    ours = np.load(out)
    print(f"passages: {len(texts)}, threads: {a.threads}, torch {torch.__version__}")
    print(f"sentence-transformers: {statistics.median(st_rates):.1f} passages/s (runs {', '.join(f'{x:.1f}' for x in st_rates)})")
    print(f"ragl embed:            {statistics.median(ragl_rates):.1f} passages/s (runs {', '.join(f'{x:.1f}' for x in ragl_rates)})")
    print(f"ratio ragl / sentence-transformers: {statistics.median(ragl_rates) / statistics.median(st_rates):.2f}x")
    print(f"max |ragl - sentence-transformers| over all embeddings: {np.abs(ours - ref).max():.2e}")


if __name__ == "__main__":
    main()
