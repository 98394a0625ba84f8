//! `ragl lm train` on a text the test writes: the loss falls, the run saves a GPT-2 that
//! loads like any other, and a run stopped part-way and resumed ends with the same weights
//! and metrics as one that ran straight through.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use ragl_lm::train::{RunConfig, resolve, train};

type B = Autodiff<Flex>;

const TEXT: &str = "the cat sat on the mat.\nthe dog sat on the log.\na cat and a dog met on a mat.\n\
                    the mat was red and the log was brown.\nthe cat saw the dog.\n";

fn config(dir: &Path, steps: u64) -> RunConfig {
    let text = dir.join("train.txt");
    std::fs::write(&text, TEXT.repeat(20)).unwrap();
    let toml = format!(
        r#"
[data]
train = ["{}"]
dev = "{}"
vocab_size = 300
[model]
n_positions = 16
n_embd = 16
n_layer = 1
n_head = 2
[train]
batch = 4
lr = 1e-2
warmup = 2
steps = {steps}
save_every = 4
dev_every = 4
"#,
        text.display(),
        text.display()
    );
    let p = dir.join("c.toml");
    std::fs::write(&p, toml).unwrap();
    RunConfig::from_toml(&p).unwrap()
}

fn weights(run: &Path) -> Vec<u8> {
    std::fs::read(resolve(run).join("model.safetensors")).unwrap()
}

#[test]
fn trains_saves_and_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), 12);
    let dev = Default::default();
    let whole = d.path().join("whole");
    let st = train::<B>(&cfg, &whole, &dev, 2, |_| {}).unwrap();
    assert_eq!(st.step, 12);
    let metrics = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2)?.parse().ok())
        .collect();
    assert_eq!(losses.len(), 12);
    assert!(losses[11] < losses[0] - 0.5, "{losses:?}");
    // The saved model is a GPT-2 directory.
    let m = ragl_model::gpt2::load::<Flex>(&resolve(&whole), &Default::default()).unwrap();
    assert_eq!(m.config.n_positions, 16);

    // A spent time budget stops a run before its first step.
    let split = d.path().join("split");
    let mut first = cfg.clone();
    first.train.max_minutes = Some(0.0);
    let st = train::<B>(&first, &split, &dev, 2, |_| {}).unwrap();
    assert_eq!(st.step, 0, "a spent budget stops before the first step");
    // Then a run that stopped after its step-4 checkpoint: the whole run's directory as it
    // stood then (its metrics past step 4 are dropped on resume).
    std::fs::remove_dir_all(&split).unwrap();
    std::fs::create_dir_all(split.join("checkpoints")).unwrap();
    copy_dir(
        &whole.join("checkpoints/step-0000004"),
        &split.join("checkpoints/step-0000004"),
    );
    std::fs::write(split.join("last"), "checkpoints/step-0000004").unwrap();
    std::fs::copy(whole.join("config.json"), split.join("config.json")).unwrap();
    std::fs::copy(whole.join("metrics.csv"), split.join("metrics.csv")).unwrap();
    let st = train::<B>(&cfg, &split, &dev, 2, |_| {}).unwrap();
    assert_eq!(st.step, 12);
    assert!(weights(&split) == weights(&whole), "resumed weights differ");
    let strip = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut c: Vec<&str> = l.split(',').collect();
                // Throughput and wall-clock differ between runs.
                if c.len() > 4 {
                    c[3] = "";
                    c[4] = "";
                }
                c.join(",")
            })
            .collect()
    };
    assert_eq!(strip(&split), strip(&whole));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
