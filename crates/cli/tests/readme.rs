//! The README's examples run as written: every `ragl …` command it shows (in code spans and
//! `sh` blocks) is a valid command line of this binary, and every script it names exists,
//! is executable and starts with a usage line. (The examples' long runs themselves are the
//! reproduce scripts' business; the quickstart is run by the smoke tests.)

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap()
}

/// Code spans and `sh` block lines, with `# comments` and `cmd && ` prefixes dropped.
fn snippets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            in_sh = !in_sh && lang.trim() == "sh";
            continue;
        }
        if in_sh {
            let cmd = line.split(" #").next().unwrap_or("").trim();
            out.extend(cmd.split("&&").map(|c| c.trim().to_string()));
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 {
                out.push(part.trim().to_string());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[test]
fn every_ragl_example_is_a_valid_command_line() {
    let examples: Vec<String> = snippets(&readme())
        .into_iter()
        .filter(|s| s.starts_with("ragl ") || s == "ragl")
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");
    for e in &examples {
        // Everything up to the first placeholder-free argument list; `--help` makes clap
        // check the subcommands and flags given without running anything.
        let mut args: Vec<&str> = e.split_whitespace().skip(1).collect();
        args.retain(|a| !a.starts_with('<'));
        args.push("--help");
        let o = Command::new(env!("CARGO_BIN_EXE_ragl"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "README example {e:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn every_script_the_readme_names_exists_with_a_usage_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut named = Vec::new();
    for s in snippets(&readme()) {
        for word in s.split_whitespace() {
            if word.starts_with("scripts/") && !word.ends_with('/') {
                named.push(word.trim_end_matches([')', ',', '.']).to_string());
            }
        }
    }
    assert!(!named.is_empty());
    for n in &named {
        if n.contains('*') {
            continue;
        }
        let p = root.join(n);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{n}: {e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert!(
                mode & 0o111 != 0 || n.ends_with(".py"),
                "{n} is not executable"
            );
        }
        assert!(
            text.lines()
                .take(12)
                .any(|l| l.to_lowercase().contains("usage")),
            "{n} has no usage line near its top"
        );
    }
}
