//! `ragl mt train` → `ragl knnmt build|merge|eval` through the binary, on a tiny model
//! trained here: a build killed with SIGKILL resumes and ends byte-identical to an
//! uninterrupted one, a sharded build merges into the same datastore, and bad requests exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn ragl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> Output {
    let o = ragl(args);
    assert!(
        o.status.success(),
        "ragl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Parallel text made from templates: a few thousand target tokens.
fn corpus(dir: &Path, pairs: usize) -> (String, String) {
    let subj = [
        ("ein hund", "a dog"),
        ("eine katze", "a cat"),
        ("ein mann", "a man"),
        ("eine frau", "a woman"),
        ("ein kind", "a child"),
    ];
    let verb = [
        ("läuft", "runs"),
        ("schläft", "sleeps"),
        ("isst", "eats"),
        ("spielt", "plays"),
    ];
    let place = [
        ("im park", "in the park"),
        ("am strand", "on the beach"),
        ("zu hause", "at home"),
    ];
    let (mut de, mut en) = (String::new(), String::new());
    for i in 0..pairs {
        let (s, v, p) = (subj[i % 5], verb[(i / 5) % 4], place[(i / 20) % 3]);
        de.push_str(&format!("{} {} {}\n", s.0, v.0, p.0));
        en.push_str(&format!("{} {} {}\n", s.1, v.1, p.1));
    }
    let (s, t) = (dir.join("c.de"), dir.join("c.en"));
    std::fs::write(&s, de).unwrap();
    std::fs::write(&t, en).unwrap();
    (s.to_str().unwrap().into(), t.to_str().unwrap().into())
}

fn tiny_model(dir: &Path, src: &str, tgt: &str) -> String {
    let cfg = ragl_testkit::mt::TinyMt {
        vocab_size: 80,
        max_tokens: 256,
        max_steps: 15,
        seed: Some(3),
        save_every: None,
    }
    .toml(Path::new(src), Path::new(tgt));
    let p = dir.join("c.toml");
    std::fs::write(&p, cfg).unwrap();
    let run = dir.join("run");
    ok(&[
        "mt",
        "train",
        "--config",
        p.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
    ]);
    run.to_str().unwrap().into()
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    let names = |f: &[(PathBuf, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb));
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{} differs", name.display());
    }
}

#[test]
fn killed_build_resumes_identically_and_shards_merge_to_the_same_datastore() {
    let d = tempfile::tempdir().unwrap();
    let (src, tgt) = corpus(d.path(), 3000);
    let model = tiny_model(d.path(), &src, &tgt);
    let build = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "knnmt",
            "build",
            "--model",
            &model,
            "--src",
            &src,
            "--tgt",
            &tgt,
            "--chunk-keys",
            "500",
            "--graph-threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let reference = d.path().join("ref");
    ok(&build(&reference, &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    // f16 keys live only inside the graph.
    assert!(!reference.join("index/vectors.f32").exists());
    assert!(reference.join("index/hnsw.usearch").exists());

    // Kill -9 after the first chunks are on disk. A tiny model is fast, so if the build
    // wins the race the attempt is repeated (it almost never is).
    let killed = d.path().join("killed");
    let mut resumed_after_kill = false;
    for _ in 0..20 {
        let _ = std::fs::remove_dir_all(&killed);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragl"))
            .args(build(&killed, &[]))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let first_chunk = killed.join("index.partial/chunk-000001.f32");
        let t = Instant::now();
        while !first_chunk.exists() && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !killed.join("manifest.json").exists() {
            resumed_after_kill = true;
            break;
        }
    }
    assert!(
        resumed_after_kill,
        "never caught the build before it finished"
    );
    let o = ok(&build(&killed, &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("(0 resumed"), "nothing was resumed: {e}");
    assert_same_tree(&reference, &killed);

    // Two exact f32 shards merged into an f16 HNSW datastore: the same bytes again.
    let mut shards = Vec::new();
    for i in 0..2 {
        let s = d.path().join(format!("shard{i}"));
        let shard = format!("{i}/2");
        let args = build(&s, &["--shard", &shard, "--kind", "exact", "--keys", "f32"]);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        shards.push(s.to_str().unwrap().to_owned());
    }
    let merged = d.path().join("merged");
    ok(&[
        "knnmt",
        "merge",
        &shards[1],
        &shards[0],
        "--graph-threads",
        "1",
        "--out",
        merged.to_str().unwrap(),
    ]);
    for f in ["values.u32", "index/hnsw.usearch", "index/ids.txt"] {
        assert!(
            std::fs::read(merged.join(f)).unwrap() == std::fs::read(reference.join(f)).unwrap(),
            "{f} differs"
        );
    }

    // Decoding with it: the JSON report has both systems and their decoder-row counts.
    let json = d.path().join("eval.json");
    let o = ok(&[
        "knnmt",
        "eval",
        "--model",
        &model,
        "--datastore",
        merged.to_str().unwrap(),
        "-i",
        &src,
        "--ref",
        &tgt,
        "--limit",
        "20",
        "--k",
        "4",
        "--report",
        json.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("per decoder row"), "{out}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(j["base"]["rows"].as_u64().unwrap() > 0);
    assert!(j["best"]["rows"].as_u64().unwrap() > 0);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(j["datastore_keys"], manifest["counts"]["keys"]);

    // Bad requests: exit 2 with a one-line reason.
    for (args, want) in [
        (
            build(&d.path().join("x"), &["--kind", "exact"]),
            "--keys f32",
        ),
        (
            build(&d.path().join("y"), &["--shard", "0/2"]),
            "exact datastore",
        ),
        (
            build(
                &d.path().join("z"),
                &["--shard", "2/2", "--kind", "exact", "--keys", "f32"],
            ),
            "expected i/n",
        ),
    ] {
        let o = ragl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    let o = ragl(&[
        "knnmt",
        "merge",
        &shards[0],
        "--out",
        d.path().join("m1").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
