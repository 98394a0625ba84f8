//! The shell contract, held by real pipelines: commands chained through stdin and stdout
//! (bash, `set -o pipefail`; some with explicit `-`, some with the flags left out) on the
//! artifacts of one `ragl quickstart --smoke` run, each compared with the same commands run
//! through files; a closed downstream pipe (`| head -1`) ending a command quietly with exit
//! 0; and the common mistakes answered with what to do.

use std::process::{Command, Output};

mod common;
use common::smoke;

/// Runs `script` in bash inside the smoke run's directory, with `$RAGL` the binary.
fn bash(script: &str) -> Output {
    Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(smoke())
        .env("RAGL", env!("CARGO_BIN_EXE_ragl"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}, stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn translate_into_eval_bleu() {
    let piped = stdout(&bash(
        r#""$RAGL" mt translate --model mt -i - -o - < data/mt/medical.test.src | "$RAGL" eval bleu data/mt/medical.test.tgt -i -"#,
    ));
    let files = stdout(&bash(
        r#"d=$(mktemp -d)
"$RAGL" mt translate --model mt -i data/mt/medical.test.src -o "$d/hyp"
"$RAGL" eval bleu data/mt/medical.test.tgt -i "$d/hyp""#,
    ));
    assert!(piped.starts_with("BLEU"), "{piped}");
    assert_eq!(piped, files);
}

#[test]
fn predict_into_eval_qa() {
    let piped = stdout(&bash(
        r#""$RAGL" predict-qa --checkpoint qa-retrieval/best --passages data/world/passages.jsonl --k 3 -o - < data/qa/test.jsonl | "$RAGL" eval qa --gold data/qa/test.jsonl --pred - --json"#,
    ));
    let files = stdout(&bash(
        r#"d=$(mktemp -d)
"$RAGL" predict-qa --checkpoint qa-retrieval/best --passages data/world/passages.jsonl --k 3 -i data/qa/test.jsonl -o "$d/pred.jsonl"
"$RAGL" eval qa --gold data/qa/test.jsonl --pred "$d/pred.jsonl" --json"#,
    ));
    let j: serde_json::Value = serde_json::from_str(&piped).unwrap();
    assert!(j["total"].as_u64().unwrap() > 0, "{piped}");
    assert_eq!(piped, files);
}

#[test]
fn chunk_annotate_and_mask_through_pipes() {
    // From stdin, annotate mines no gazetteer (it cannot read its input twice): the files
    // are annotated with --no-mine to match.
    let piped = stdout(&bash(
        r#"cat data/world/docs.jsonl | "$RAGL" corpus chunk --input - --output - --tokenizer models/tower --max-tokens 64 | "$RAGL" mask annotate | "$RAGL" mask make --tokenizer models/tower --seed 3"#,
    ));
    let files = stdout(&bash(
        r#"d=$(mktemp -d)
"$RAGL" corpus chunk -i data/world/docs.jsonl -o "$d/p.jsonl" --tokenizer models/tower --max-tokens 64
"$RAGL" mask annotate -i "$d/p.jsonl" -o "$d/a.jsonl" --no-mine
"$RAGL" mask make -i "$d/a.jsonl" -o "$d/e.jsonl" --tokenizer models/tower --seed 3
cat "$d/e.jsonl""#,
    ));
    assert!(piped.lines().count() > 10, "{piped}");
    assert_eq!(piped, files);
}

#[test]
fn squad_json_on_stdin_is_detected_as_a_path_is() {
    let piped = stdout(&bash(
        r#"cat data/world/qa.json | "$RAGL" corpus chunk --tokenizer models/tower --max-tokens 64"#,
    ));
    let files = stdout(&bash(
        r#""$RAGL" corpus chunk -i data/world/qa.json --tokenizer models/tower --max-tokens 64"#,
    ));
    assert!(!piped.is_empty());
    assert_eq!(piped, files);
}

#[test]
fn query_formats_are_detected_on_stdin_as_on_a_path() {
    for file in ["data/world/qa.json", "data/qa/test.jsonl"] {
        let piped = stdout(&bash(&format!(
            r#"cat {file} | "$RAGL" retrieve --index index-bm25 --k 5"#
        )));
        let path = stdout(&bash(&format!(
            r#""$RAGL" retrieve --index index-bm25 --k 5 -i {file}"#
        )));
        assert!(piped.lines().count() > 10, "{file}: {piped}");
        assert_eq!(piped, path, "{file}");
    }
}

#[test]
fn retrieve_into_fuse_into_eval_retrieval() {
    let piped = stdout(&bash(
        r#""$RAGL" retrieve --index index-bm25 --k 20 < data/qa/test.jsonl | "$RAGL" fuse --run - --k 20 | "$RAGL" eval retrieval --gold data/qa/test.jsonl --passages data/world/passages.jsonl --k 1,5,20"#,
    ));
    let files = stdout(&bash(
        r#"d=$(mktemp -d)
"$RAGL" retrieve --index index-bm25 --k 20 -i data/qa/test.jsonl -o "$d/run.jsonl"
"$RAGL" fuse --run "$d/run.jsonl" --k 20 -o "$d/fused.jsonl"
"$RAGL" eval retrieval --gold data/qa/test.jsonl --passages data/world/passages.jsonl --k 1,5,20 --retrieved "$d/fused.jsonl""#,
    ));
    assert!(piped.contains("recall@5"), "{piped}");
    assert_eq!(piped, files);
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    // Enough output that the writer outlives its reader: 40 copies of the test questions,
    // the whole corpus each.
    let o = bash(
        r#"d=$(mktemp -d)
for i in $(seq 40); do cat data/qa/test.jsonl; done > "$d/q.jsonl"
set +o pipefail
"$RAGL" retrieve --index index-bm25 --k 1000 -i "$d/q.jsonl" 2> "$d/err" | head -1 > /dev/null
echo "retrieve ${PIPESTATUS[0]}"
"$RAGL" completions zsh 2> "$d/err2" | head -1 > /dev/null
echo "completions ${PIPESTATUS[0]}"
cat "$d/err" "$d/err2""#,
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("retrieve 0\ncompletions 0\n"),
        "exit codes and stderr: {out}"
    );
    assert!(!out.contains("error"), "{out}");
}

/// The common mistakes get messages that say what to do, with exit 2.
#[test]
fn errors_say_what_to_do() {
    let case = |script: &str, want: &[&str]| {
        let o = bash(script);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{script}: {e}");
        for w in want {
            assert!(e.contains(w), "{script}: {w:?} not in {e:?}");
        }
        assert!(!e.contains("column"), "{script}: {e}");
    };
    // SQuAD JSON where passages are expected.
    case(
        r#"d=$(mktemp -d); "$RAGL" index build --passages data/world/qa.json --kind bm25 --out "$d/i""#,
        &["qa.json:1", "SQuAD JSON", "ragl corpus chunk"],
    );
    // Plain text on stdin where passages JSONL is expected.
    case(
        r#"echo "just some text" | "$RAGL" mask annotate"#,
        &["<stdin>:1", "\"id\", \"text\""],
    );
    // A misspelt model directory.
    case(
        r#""$RAGL" corpus chunk -i data/world/docs.jsonl --tokenizer models/towr"#,
        &["models/towr: no such directory"],
    );
    // A run that names a passage the passages file lacks: both files named.
    case(
        r#"sed '1s/"hits":\[{"id":"[^"]*"/"hits":[{"id":"nope"/' retrieval/bm25.run | "$RAGL" eval retrieval --gold data/qa/test.jsonl --passages data/world/passages.jsonl"#,
        &["\"nope\"", "data/world/passages.jsonl"],
    );
}

/// Paths of the wrong kind and non-finite vectors are the user's to fix: exit 2, one message
/// (the OS error once), nothing written.
#[test]
fn wrong_kind_paths_and_non_finite_vectors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let nan = d.path().join("q.npy");
    let mut w = ragl_core::npy::NpyWriter::create(&nan, 2).unwrap();
    w.write_row(&[0.5, f32::NAN]).unwrap();
    w.finish().unwrap();
    let cases = [
        (
            r#""$RAGL" eval bleu data/mt -i data/mt/medical.test.tgt"#.to_string(),
            "Is a directory",
        ),
        (
            r#""$RAGL" corpus chunk -i data/world/docs.jsonl --tokenizer models/tower -o summary.md/p.jsonl"#.to_string(),
            "summary.md",
        ),
        (
            format!(
                r#""$RAGL" index build --vectors {} --out "$(mktemp -d)/i""#,
                nan.display()
            ),
            "row 0, column 1 is NaN",
        ),
    ];
    for (script, want) in cases {
        let o = bash(&script);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{script}: {e}");
        assert!(e.contains(want), "{script}: {want:?} not in {e:?}");
        assert!(
            e.matches("os error").count() <= 1,
            "the OS error twice: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{script}: {e:?}");
    }
}

/// A second writer of one output is refused with the first one's pid; a lock left by a
/// process that has ended is taken over.
#[test]
fn one_writer_per_output() {
    let o = bash(
        r#"d=$(mktemp -d)
echo $$ > "$d/.idx.lock"
set +e
"$RAGL" index build --passages data/world/passages.jsonl --kind bm25 --out "$d/idx" 2> "$d/err"
echo "live $?"
cat "$d/err"
sh -c 'exit 0' & dead=$!; wait $dead
echo $dead > "$d/.idx.lock"
"$RAGL" index build --passages data/world/passages.jsonl --kind bm25 --out "$d/idx" 2> /dev/null
echo "stale $?"
test -e "$d/.idx.lock" && echo "lock left" || echo "lock released""#,
    );
    let out = stdout(&o);
    assert!(out.starts_with("live 2\n"), "{out}");
    assert!(out.contains("is writing here"), "{out}");
    assert!(out.contains("stale 0\nlock released"), "{out}");
}

/// A write that fails for want of space (here a file size limit, `ulimit -f`, with SIGXFSZ
/// ignored so the write returns EFBIG as a full disk returns ENOSPC) exits 2 naming the
/// file, leaves no staging behind, and leaves the previous artifact or checkpoint as it
/// was, still usable.
#[test]
fn a_full_disk_loses_nothing() {
    let o = bash(
        r#"d=$(mktemp -d)
"$RAGL" -q index build --passages data/world/passages.jsonl --kind bm25 --out "$d/idx" 2> /dev/null
before=$(cat "$d"/idx/* | sha256sum)
set +e
(trap '' XFSZ; ulimit -f 1; "$RAGL" -q index build --passages data/world/passages.jsonl --kind bm25 --out "$d/idx") 2> "$d/err"
echo "index $?"
test "$(cat "$d"/idx/* | sha256sum)" = "$before" && echo "index intact"
ls -A "$d" | grep -c 'tmp' | sed 's/^/staging left /'
cat "$d/err"
cp -r mt "$d/mt"
(trap '' XFSZ; ulimit -f 64; "$RAGL" -q mt train --config configs/mt.toml --run "$d/mt" --max-steps 6) 2> "$d/err2"
echo "train $?"
grep -c "cannot write $d/mt" "$d/err2" | sed 's/^/named /'
echo 'ein test' | "$RAGL" -q mt translate --model "$d/mt" > /dev/null && echo "checkpoint usable""#,
    );
    let out = stdout(&o);
    assert!(
        out.contains("index 2\nindex intact\nstaging left 0\n"),
        "{out}"
    );
    assert!(out.contains("File too large"), "{out}");
    assert!(out.contains("train 2\nnamed 1\ncheckpoint usable"), "{out}");
}

/// Ctrl-C (SIGINT) or SIGTERM in the middle of an index build ends it with the shell's
/// 130/143, leaves what it finished valid, and the same command resumes to the same index
/// an uninterrupted build makes. (When the signal lands after the build ended, the first
/// run simply succeeded; the comparison holds either way.)
#[test]
fn an_interrupted_build_resumes_to_the_same_index() {
    let o = bash(
        r#"d=$(mktemp -d)
"$RAGL" -q synth world --out "$d/w" --people 3000 --cities 60 --organisations 30 > /dev/null 2>&1
"$RAGL" -q corpus chunk -i "$d/w/docs.jsonl" -o "$d/p.jsonl" --tokenizer models/tower --max-tokens 64 2> /dev/null
build() { "$RAGL" -q index build --passages "$d/p.jsonl" --model models/tower --max-len 64 --chunk-rows 256 --out "$1" > /dev/null 2>&1; }
build "$d/full"
set -m +e
for sig in INT TERM; do
  build "$d/cut-$sig" & pid=$!
  # The job's own process group (set -m): the signal reaches ragl, as Ctrl-C does.
  sleep 1.5; kill -$sig -- -$pid; wait $pid; echo "$sig exit $?"
  # Rerun once the interrupted process is gone (its lock is then taken over).
  lock="$d/.cut-$sig.lock"
  while [ -e "$lock" ] && kill -0 "$(cat "$lock")" 2> /dev/null; do sleep 0.1; done
  build "$d/cut-$sig"; echo "$sig resumed $?"
  cmp "$d/full/vectors.f32" "$d/cut-$sig/vectors.f32" && cmp "$d/full/ids.txt" "$d/cut-$sig/ids.txt" && echo "$sig same index"
done"#,
    );
    let out = stdout(&o);
    for (sig, code) in [("INT", "130"), ("TERM", "143")] {
        assert!(
            out.contains(&format!("{sig} exit {code}")) || out.contains(&format!("{sig} exit 0")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{sig} resumed 0\n{sig} same index")),
            "{out}"
        );
    }
}

/// Ctrl-C in the middle of `mt train` exits 130 with its last checkpoint valid, and the same
/// command resumes from it to the run an uninterrupted one makes: the same loss at every
/// step and the same translations.
#[test]
fn an_interrupted_training_resumes_exactly() {
    let o = bash(
        r#"d=$(mktemp -d)
sed -e 's/^save_every = .*/save_every = 20/' -e 's/^dev_every = .*/dev_every = 0/' configs/mt.toml > "$d/mt.toml"
train() { "$RAGL" -q mt train --config "$d/mt.toml" --run "$1" --max-steps 120 > /dev/null 2>&1; }
train "$d/full"
set -m +e
train "$d/cut" & pid=$!
sleep 4; kill -INT -- -$pid; wait $pid; echo "exit $?"
while [ -e "$d/.cut.lock" ] && kill -0 "$(cat "$d/.cut.lock")" 2> /dev/null; do sleep 0.1; done
train "$d/cut"; echo "resumed $?"
cmp <(cut -d, -f1-5 "$d/full/metrics.csv") <(cut -d, -f1-5 "$d/cut/metrics.csv") && echo "same losses"
for r in full cut; do "$RAGL" -q mt translate --model "$d/$r" -i data/mt/medical.test.src -o "$d/$r.hyp" 2> /dev/null; done
cmp "$d/full.hyp" "$d/cut.hyp" && echo "same translations""#,
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("exit 130\n") || out.starts_with("exit 0\n"),
        "{out}"
    );
    assert!(
        out.contains("resumed 0\nsame losses\nsame translations"),
        "{out}"
    );
}

/// Ctrl-C in the middle of `pretrain` and of `finetune-qa` exits 130, and the same command
/// resumes from the last checkpoint to the run an uninterrupted one makes: every metric of
/// every step (the clock's column aside) and every held-out evaluation.
#[test]
fn interrupted_realm_runs_resume_exactly() {
    let o = bash(
        r#"d=$(mktemp -d)
sed -e 's/^max_steps = .*/max_steps = 40/' -e 's/^save_every = .*/save_every = 10/' -e 's/^eval_every = .*/eval_every = 20/' configs/realm.toml > "$d/realm.toml"
sed -e 's/^max_steps = .*/max_steps = 60/' -e 's/^dev_every = .*/dev_every = 20/' -e 's/^checkpoint_every = .*/checkpoint_every = 10/' configs/qa-retrieval.toml > "$d/qa.toml"
pretrain() { "$RAGL" -q pretrain --config "$d/realm.toml" --run "$1" > /dev/null 2>&1; }
finetune() { "$RAGL" -q finetune-qa --config "$d/qa.toml" --run "$1" > /dev/null 2>&1; }
same() { cmp <(cut -d, -f"$3" "$1") <(cut -d, -f"$3" "$2"); }
set -m +e
for job in pretrain finetune; do
  $job "$d/$job-full"
  $job "$d/$job-cut" & pid=$!
  # Interrupt once training proper has run past its first checkpoint (under load a fixed
  # sleep lands in the ICT warm start instead), or after 20 s at most.
  for _ in $(seq 200); do [ "$(wc -l < "$d/$job-cut/metrics.csv" 2> /dev/null || echo 0)" -gt 12 ] && break; sleep 0.1; done
  kill -INT -- -$pid; wait $pid; echo "$job exit $?"
  lock="$d/.$job-cut.lock"
  while [ -e "$lock" ] && kill -0 "$(cat "$lock")" 2> /dev/null; do sleep 0.1; done
  $job "$d/$job-cut"; echo "$job resumed $?"
done
same "$d/pretrain-full/metrics.csv" "$d/pretrain-cut/metrics.csv" 1-11,13-15 && same "$d/pretrain-full/eval.csv" "$d/pretrain-cut/eval.csv" 1- && echo "pretrain same"
same "$d/finetune-full/metrics.csv" "$d/finetune-cut/metrics.csv" 1-5,7 && echo "finetune same""#,
    );
    let out = stdout(&o);
    for job in ["pretrain", "finetune"] {
        assert!(
            out.contains(&format!("{job} exit 130\n")) || out.contains(&format!("{job} exit 0\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{job} resumed 0\n")), "{out}");
        assert!(out.contains(&format!("{job} same")), "{out}");
    }
}

/// Ctrl-C in the middle of `knnmt build` exits 130 leaving its finished chunks, and the rerun
/// resumes to the datastore an uninterrupted build makes, byte for byte.
#[test]
fn an_interrupted_datastore_build_resumes_to_the_same_datastore() {
    let o = bash(
        r#"d=$(mktemp -d)
"$RAGL" -q synth parallel --out "$d/t" --general-train 4000 --medical-train 100 > /dev/null 2>&1
build() { "$RAGL" -q knnmt build --model mt --src "$d/t/general.train.src" --tgt "$d/t/general.train.tgt" --out "$1" --kind exact --keys f32 --chunk-keys 512 > /dev/null 2>&1; }
build "$d/full"
set -m +e
build "$d/cut" & pid=$!
sleep 1.5; kill -INT -- -$pid; wait $pid; echo "exit $?"
while [ -e "$d/.cut.lock" ] && kill -0 "$(cat "$d/.cut.lock")" 2> /dev/null; do sleep 0.1; done
build "$d/cut"; echo "resumed $?"
cmp "$d/full/values.u32" "$d/cut/values.u32" && cmp "$d/full/index/vectors.f32" "$d/cut/index/vectors.f32" && echo "same datastore""#,
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("exit 130\n") || out.starts_with("exit 0\n"),
        "{out}"
    );
    assert!(out.contains("resumed 0\nsame datastore"), "{out}");
}
