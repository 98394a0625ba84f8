//! The reliability probe: bad inputs and faults across the commands, each run on a copy of
//! one `ragl quickstart --smoke` run, with the exit code the contract asks for (2 for what
//! the user can fix), one message that names what is wrong, no panic text, and no output
//! left where an output was refused. Prints a tally; fails on any case that is not clean.

use std::path::Path;
use std::process::Command;

mod common;
use common::smoke;

/// (name, bash script run in the copy, exit code, words the message must hold). Scripts
/// may write `$OUT` (a fresh path under a scratch directory); a refused command must leave
/// nothing there.
const CASES: &[(&str, &str, i32, &str)] = &[
    // Usage.
    (
        "unknown command",
        r#""$RAGL" frobnicate"#,
        2,
        "unrecognized subcommand",
    ),
    (
        "unknown flag",
        r#""$RAGL" eval bleu data/mt/medical.test.tgt --frob"#,
        2,
        "--frob",
    ),
    (
        "missing required flag",
        r#""$RAGL" pretrain --run "$OUT""#,
        2,
        "--config",
    ),
    (
        "bad number",
        r#""$RAGL" retrieve --index index-bm25 --k many -i data/qa/test.jsonl"#,
        2,
        "many",
    ),
    (
        "bad enum",
        r#""$RAGL" index build --passages data/world/passages.jsonl --kind tree --out "$OUT""#,
        2,
        "tree",
    ),
    (
        "bad shard",
        r#""$RAGL" index build --passages data/world/passages.jsonl --shard 3/2 --out "$OUT""#,
        2,
        "--shard",
    ),
    (
        "bad progress mode",
        r#""$RAGL" --progress loud eval bleu data/mt/medical.test.tgt -i data/mt/medical.test.tgt"#,
        2,
        "loud",
    ),
    // Paths.
    (
        "missing hypothesis file",
        r#""$RAGL" eval bleu data/mt/medical.test.tgt -i nope.txt"#,
        2,
        "nope.txt",
    ),
    (
        "missing reference file",
        r#""$RAGL" eval bleu nope.txt -i data/mt/medical.test.tgt"#,
        2,
        "nope.txt",
    ),
    (
        "directory for a file",
        r#""$RAGL" eval chrf data/mt -i data/mt/medical.test.tgt"#,
        2,
        "Is a directory",
    ),
    (
        "missing passages",
        r#""$RAGL" index build --passages nope.jsonl --kind bm25 --out "$OUT""#,
        2,
        "nope.jsonl",
    ),
    (
        "missing index",
        r#""$RAGL" retrieve --index nope -i data/qa/test.jsonl"#,
        2,
        "nope",
    ),
    (
        "file for an index",
        r#""$RAGL" retrieve --index data/qa/test.jsonl -i data/qa/test.jsonl"#,
        2,
        "test.jsonl",
    ),
    (
        "missing model",
        r#""$RAGL" mt translate --model nope -i data/mt/medical.test.src"#,
        2,
        "nope",
    ),
    (
        "misspelt tokenizer dir",
        r#""$RAGL" corpus chunk -i data/world/docs.jsonl --tokenizer models/towr -o "$OUT""#,
        2,
        "no such directory",
    ),
    (
        "missing config",
        r#""$RAGL" pretrain --config nope.toml --run "$OUT""#,
        2,
        "nope.toml",
    ),
    (
        "output under a file",
        r#""$RAGL" corpus chunk -i data/world/docs.jsonl --tokenizer models/tower -o summary.md/x.jsonl"#,
        2,
        "summary.md",
    ),
    (
        "index output under a file",
        r#""$RAGL" index build --passages data/world/passages.jsonl --kind bm25 --out summary.md/idx"#,
        2,
        "summary.md",
    ),
    (
        "missing questions",
        r#""$RAGL" predict-qa --checkpoint qa-retrieval/best --passages data/world/passages.jsonl -i nope.jsonl -o "$OUT""#,
        2,
        "nope.jsonl",
    ),
    (
        "missing QA model",
        r#""$RAGL" predict-qa --checkpoint nope --passages data/world/passages.jsonl -i data/qa/test.jsonl -o "$OUT""#,
        2,
        "nope",
    ),
    (
        "missing datastore",
        r#""$RAGL" knnmt eval --model mt --datastore nope -i data/mt/medical.test.src --ref data/mt/medical.test.tgt"#,
        2,
        "nope",
    ),
    (
        "missing run file",
        r#""$RAGL" fuse --run nope.run -o "$OUT""#,
        2,
        "nope.run",
    ),
    (
        "missing gold",
        r#""$RAGL" eval qa --gold nope.jsonl --pred qa-retrieval/test.pred.jsonl"#,
        2,
        "nope.jsonl",
    ),
    (
        "missing vocab",
        r#""$RAGL" model init --vocab nope.txt --out "$OUT""#,
        2,
        "nope.txt",
    ),
    // Text content.
    (
        "empty hypothesis",
        r#": > "$S/e.txt"; "$RAGL" eval bleu data/mt/medical.test.tgt -i "$S/e.txt""#,
        2,
        "empty",
    ),
    (
        "line counts differ",
        r#"head -3 data/mt/medical.test.tgt > "$S/h.txt"; "$RAGL" eval bleu data/mt/medical.test.tgt -i "$S/h.txt""#,
        2,
        "no counterpart",
    ),
    (
        "invalid UTF-8",
        r#"printf 'ok\n\xff\xfe\n' > "$S/u.txt"; "$RAGL" eval bleu "$S/u.txt" -i "$S/u.txt""#,
        2,
        "UTF-8",
    ),
    (
        "plain text as passages",
        r#"echo "hello" | "$RAGL" mask annotate -o "$OUT""#,
        2,
        "\"id\", \"text\"",
    ),
    (
        "SQuAD JSON as passages",
        r#""$RAGL" index build --passages data/world/qa.json --kind bm25 --out "$OUT""#,
        2,
        "ragl corpus chunk",
    ),
    (
        "passage without text",
        r#"echo '{"id":"a"}' > "$S/p.jsonl"; "$RAGL" index build --passages "$S/p.jsonl" --kind bm25 --out "$OUT""#,
        2,
        "p.jsonl:1",
    ),
    (
        "passage with empty id",
        r#"echo '{"id":"","text":"x"}' > "$S/p.jsonl"; "$RAGL" index build --passages "$S/p.jsonl" --kind bm25 --out "$OUT""#,
        2,
        "p.jsonl:1",
    ),
    (
        "passage with object id",
        r#"echo '{"id":{},"text":"x"}' > "$S/p.jsonl"; "$RAGL" index build --passages "$S/p.jsonl" --kind bm25 --out "$OUT""#,
        2,
        "p.jsonl:1",
    ),
    (
        "empty passage file",
        r#": > "$S/p.jsonl"; "$RAGL" index build --passages "$S/p.jsonl" --kind bm25 --out "$OUT""#,
        2,
        "p.jsonl",
    ),
    (
        "bad JSON on line 2",
        r#"(head -1 data/world/passages.jsonl; echo '{oops') > "$S/p.jsonl"; "$RAGL" index build --passages "$S/p.jsonl" --kind bm25 --out "$OUT""#,
        2,
        "p.jsonl:2",
    ),
    (
        "predictions missing",
        r#"head -2 qa-retrieval/test.pred.jsonl > "$S/pr.jsonl"; "$RAGL" eval qa --gold data/qa/test.jsonl --pred "$S/pr.jsonl""#,
        2,
        "pr.jsonl",
    ),
    (
        "duplicate predictions",
        r#"(cat qa-retrieval/test.pred.jsonl; head -1 qa-retrieval/test.pred.jsonl) > "$S/pr.jsonl"; "$RAGL" eval qa --gold data/qa/test.jsonl --pred "$S/pr.jsonl""#,
        2,
        "pr.jsonl",
    ),
    (
        "bad prediction JSON",
        r#"echo '{"id":' > "$S/pr.jsonl"; "$RAGL" eval qa --gold data/qa/test.jsonl --pred "$S/pr.jsonl""#,
        2,
        "pr.jsonl:",
    ),
    (
        "gold format unknown",
        r#"echo 'just text' > "$S/g.dat"; "$RAGL" eval qa --gold "$S/g.dat" --pred qa-retrieval/test.pred.jsonl"#,
        2,
        "--format",
    ),
    (
        "bad answer regex",
        r#"printf 'who?\t(unclosed\n' > "$S/g.tsv"; echo '{"question":"who?","prediction":"x"}' > "$S/pr.jsonl"; "$RAGL" eval qa --gold "$S/g.tsv" --pred "$S/pr.jsonl""#,
        2,
        "g.tsv",
    ),
    (
        "run query not in gold",
        r#"sed '1s/"qid":"[^"]*"/"qid":"zz"/' retrieval/bm25.run | "$RAGL" eval retrieval --gold data/qa/test.jsonl --passages data/world/passages.jsonl"#,
        2,
        "zz",
    ),
    (
        "run passage unknown",
        r#"sed '1s/"hits":\[{"id":"[^"]*"/"hits":[{"id":"nope"/' retrieval/bm25.run | "$RAGL" eval retrieval --gold data/qa/test.jsonl --passages data/world/passages.jsonl"#,
        2,
        "passages.jsonl",
    ),
    (
        "bad run line",
        r#"echo '{"qid":' | "$RAGL" fuse --run - -o "$OUT""#,
        2,
        "<stdin>:1",
    ),
    (
        "misaligned parallel text",
        r#"head -5 data/mt/medical.test.tgt > "$S/t.txt"; "$RAGL" knnmt build --model mt --src data/mt/medical.test.src --tgt "$S/t.txt" --out "$OUT""#,
        2,
        "t.txt",
    ),
    (
        "masked examples without spans",
        r#""$RAGL" mask make -i data/world/passages.jsonl --tokenizer models/tower -o "$OUT""#,
        2,
        "mask annotate",
    ),
    (
        "overlapping external spans",
        r#"echo '{"id":"person-0:0","spans":[{"start":0,"end":5,"type":"PERSON"},{"start":3,"end":8,"type":"PERSON"}]}' > "$S/sp.jsonl"; "$RAGL" mask annotate -i data/world/passages.jsonl --spans "$S/sp.jsonl" -o "$OUT""#,
        2,
        "overlap",
    ),
    // Configs.
    (
        "config unknown key",
        r#"sed 's/^k = 3/kk = 3/' configs/realm.toml > "$S/c.toml"; "$RAGL" pretrain --config "$S/c.toml" --run "$OUT""#,
        2,
        "c.toml:",
    ),
    (
        "config bad TOML",
        r#"echo '[model' > "$S/c.toml"; "$RAGL" pretrain --config "$S/c.toml" --run "$OUT""#,
        2,
        "c.toml:1",
    ),
    (
        "config wrong type",
        r#"sed 's/^k = 3/k = "three"/' configs/realm.toml > "$S/c.toml"; "$RAGL" pretrain --config "$S/c.toml" --run "$OUT""#,
        2,
        "c.toml:",
    ),
    (
        "config inconsistent",
        r#"sed 's/^swap_after = 0/swap_after = 1/' configs/realm.toml > "$S/c.toml"; "$RAGL" pretrain --config "$S/c.toml" --run "$OUT""#,
        2,
        "swap_after",
    ),
    (
        "QA config unknown key",
        r#"sed 's/^k = 3/kk = 3/' configs/qa-retrieval.toml > "$S/c.toml"; "$RAGL" finetune-qa --config "$S/c.toml" --run "$OUT""#,
        2,
        "c.toml:",
    ),
    (
        "MT config unknown key",
        r#"sed 's/^heads = /hedas = /' configs/mt.toml > "$S/c.toml"; "$RAGL" mt train --config "$S/c.toml" --run "$OUT""#,
        2,
        "c.toml:",
    ),
    (
        "MT config bad heads",
        r#"sed 's/^heads = .*/heads = 3/' configs/mt.toml > "$S/c.toml"; "$RAGL" mt train --config "$S/c.toml" --run "$OUT""#,
        2,
        "heads",
    ),
    // Artifacts.
    (
        "index with a damaged file",
        r#"cp -r index-bm25 "$S/i"; printf 'x' >> "$S/i/bm25.bin"; "$RAGL" retrieve --index "$S/i" -i data/qa/test.jsonl"#,
        2,
        "bm25.bin",
    ),
    (
        "index with no manifest",
        r#"cp -r index-bm25 "$S/i"; rm "$S/i/manifest.json"; "$RAGL" retrieve --index "$S/i" -i data/qa/test.jsonl"#,
        2,
        "manifest",
    ),
    (
        "index with a broken manifest",
        r#"cp -r index-bm25 "$S/i"; echo '{' > "$S/i/manifest.json"; "$RAGL" index info "$S/i""#,
        2,
        "manifest",
    ),
    (
        "a BERT directory as a translation model",
        r#""$RAGL" knnmt eval --model models/tower --datastore datastore-medical -i data/mt/medical.test.src --ref data/mt/medical.test.tgt"#,
        2,
        "not a translation model",
    ),
    (
        "a model id not in the Hugging Face cache",
        r#"HF_HUB_CACHE="$S" "$RAGL" mt translate --model Org/opus-mt-xx-yy -i data/mt/medical.test.src -o "$OUT""#,
        2,
        "huggingface-cli download Org/opus-mt-xx-yy",
    ),
    (
        "query vectors of another size",
        r#""$RAGL" index audit --index index-dense --query-vectors "$S/v.npy""#,
        2,
        "v.npy",
    ),
    (
        "truncated npy",
        r#"head -c 100 "$S/v.npy" > "$S/t.npy"; "$RAGL" index build --vectors "$S/t.npy" --out "$OUT""#,
        2,
        "t.npy",
    ),
    (
        "NaN in vectors",
        r#""$RAGL" index build --vectors "$S/nan.npy" --out "$OUT""#,
        2,
        "NaN",
    ),
    (
        "npy ids of another count",
        r#"cp "$S/v.npy" "$S/w.npy"; echo a > "$S/w.ids"; "$RAGL" index build --vectors "$S/w.npy" --out "$OUT""#,
        2,
        "w.ids",
    ),
    (
        "resume with another config",
        r#"cp -r realm "$S/r"; sed 's/^k = 3/k = 2/' configs/realm.toml > "$S/c.toml"; "$RAGL" pretrain --config "$S/c.toml" --run "$S/r""#,
        2,
        "another configuration",
    ),
    (
        "QA checkpoint damaged",
        r#"cp -r qa-retrieval/best "$S/b"; printf 'x' >> "$S/b/model.mpk"; "$RAGL" predict-qa --checkpoint "$S/b" --passages data/world/passages.jsonl -i data/qa/test.jsonl -o "$OUT""#,
        2,
        "model.mpk",
    ),
    (
        "a second writer",
        r#"echo $$ > "$S/.lk.lock"; "$RAGL" index build --passages data/world/passages.jsonl --kind bm25 --out "$S/lk""#,
        2,
        "is writing here",
    ),
    (
        "passages of another index",
        r#"head -5 data/world/passages.jsonl > "$S/p.jsonl"; "$RAGL" predict-qa --checkpoint qa-retrieval/best --passages "$S/p.jsonl" -i data/qa/test.jsonl -o "$OUT""#,
        2,
        "p.jsonl",
    ),
];

/// Scratch files the cases read: a 2-column `.npy`, and one with a NaN.
fn scratch(dir: &Path) {
    let mut w = ragl_core::npy::NpyWriter::create(&dir.join("v.npy"), 2).unwrap();
    w.write_row(&[0.5, 0.25]).unwrap();
    w.write_row(&[0.1, 0.2]).unwrap();
    w.finish().unwrap();
    let mut w = ragl_core::npy::NpyWriter::create(&dir.join("nan.npy"), 2).unwrap();
    w.write_row(&[0.5, f32::NAN]).unwrap();
    w.finish().unwrap();
}

#[test]
fn every_bad_input_and_fault_is_handled_cleanly() {
    let qs = smoke();
    let mut failures = Vec::new();
    for (name, script, want_code, want_words) in CASES {
        let s = tempfile::tempdir().unwrap();
        scratch(s.path());
        let out = s.path().join("out");
        let o = Command::new("bash")
            .args(["-c", script])
            .current_dir(qs)
            .env("RAGL", env!("CARGO_BIN_EXE_ragl"))
            .env("S", s.path())
            .env("OUT", &out)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        let mut why = Vec::new();
        if o.status.code() != Some(*want_code) {
            why.push(format!("exit {:?}, want {want_code}", o.status.code()));
        }
        if !e.contains(want_words) {
            why.push(format!("message lacks {want_words:?}"));
        }
        if e.contains("panicked") || e.contains("RUST_BACKTRACE") {
            why.push("panic text".into());
        }
        if e.matches("os error").count() > 1 {
            why.push("the OS error twice".into());
        }
        if out.exists() {
            why.push("an output was left where it was refused".into());
        }
        if !why.is_empty() {
            failures.push(format!("{name}: {} — stderr: {}", why.join("; "), e.trim()));
        }
    }
    eprintln!(
        "probe: {} of {} cases clean",
        CASES.len() - failures.len(),
        CASES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
