# Usage: python3 scripts/reproduce/knnlm/corpus.py [OUT_DIR (runs/knnlm/data)] [--shared ../shared]
"""The English text of the kNN-LM experiments (issue 36), from ../shared, one file per role:

  general.train.txt  English side of multi30k train, newstest 2008-2018, IWSLT14 test, OPUS
                     TED2020/QED/OpenSubtitles/KDE4 train, and SQuAD dev paragraphs 0..1799
  general.dev.txt    newstest2019 lines 0..999, multi30k val, SQuAD paragraphs 1800..1899
  general.test.txt   newstest2019 lines 1000..1999, multi30k test 2016, SQuAD paragraphs 1900..
  koran.{train,dev,test}.txt, medical.{train,test}.txt   the domains (multidomain Koran; OPUS EMEA)

The Quran (OPUS Tanzil) and medical text (EMEA) stay out of the general text: they are the
domains. Each output line is one sentence or paragraph.
"""
import argparse, json, os


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="runs/knnlm/data")
    ap.add_argument("--shared", default="../shared")
    a = ap.parse_args()
    mt = os.path.join(a.shared, "data/mt")
    squad = json.load(open(os.path.join(a.shared, "data/qa/squad/dev-v1.1.json"), encoding="utf-8"))
    paras = [p["context"].replace("\n", " ") for art in squad["data"] for p in art["paragraphs"]]
    news = sorted(f for f in os.listdir(os.path.join(mt, "newstest")) if f.endswith(".en") and "2019" not in f)
    train = lines(os.path.join(mt, "multi30k/train.en"))
    for f in news:
        train += lines(os.path.join(mt, "newstest", f))
    train += lines(os.path.join(mt, "iwslt14/test.en"))
    for d in ["TED2020", "QED", "OpenSubtitles", "KDE4"]:
        train += lines(os.path.join(mt, f"opus-domains/{d}.train.en"))
    train += paras[:1800]
    n19 = lines(os.path.join(mt, "newstest/newstest2019-deen.en"))
    dev = n19[:1000] + lines(os.path.join(mt, "multi30k/val.en")) + paras[1800:1900]
    test = n19[1000:] + lines(os.path.join(mt, "multi30k/test_2016_flickr.en")) + paras[1900:]
    out = {
        "general.train": train, "general.dev": dev, "general.test": test,
        "koran.train": lines(os.path.join(mt, "multidomain/koran/train.en")),
        "koran.dev": lines(os.path.join(mt, "multidomain/koran/dev.en")),
        "koran.test": lines(os.path.join(mt, "multidomain/koran/test.en")),
        "medical.train": lines(os.path.join(mt, "opus-domains/EMEA.train.en")),
        "medical.test": lines(os.path.join(mt, "opus-domains/EMEA.test.en")),
    }
    os.makedirs(a.out, exist_ok=True)
    for name, ls in out.items():
        with open(os.path.join(a.out, name + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(ls) + "\n")
        print(f"{name}: {len(ls)} lines, {sum(len(l.split()) for l in ls)} words")


if __name__ == "__main__":
    main()
