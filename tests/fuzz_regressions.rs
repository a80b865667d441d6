//! The fuzz targets' checks on stable, without libFuzzer: every seed (`fuzz/seeds/<target>/`)
//! and every crash the fuzzers found (`tests/fixtures/fuzz/<target>/<name>`, style.md rule 3)
//! goes through the same function as in `fuzz/fuzz_targets/<target>.rs`, asserting the same
//! invariants. The functions live in `fuzz/src/checks.rs`, compiled into both, so the fuzzer
//! and this test cannot drift apart.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target`'s check on its seeds and fixtures; fails naming every input that breaks it.
fn replay(target: &str) {
    let check = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("a target of fuzz/src/checks.rs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files_in(&root.join("fuzz/seeds").join(target));
    assert!(
        !seeds.is_empty(),
        "no seeds for {target}: run fuzz/seeds.py"
    );
    let fixtures = files_in(&root.join("tests/fixtures/fuzz").join(target));
    let mut failed = Vec::new();
    for file in seeds.iter().chain(&fixtures) {
        let data = std::fs::read(file).expect("a readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(
                file.strip_prefix(root)
                    .unwrap_or(file)
                    .display()
                    .to_string(),
            );
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs break the check (the panic messages are above): {failed:#?}",
        failed.len(),
        seeds.len() + fixtures.len()
    );
}

#[test]
fn every_target_is_replayed_here() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "sip_screen",
            "sip_parse",
            "sdp",
            "rtp",
            "rtcp",
            "dtmf",
            "digest",
            "config"
        ],
        "a new target needs its #[test] below"
    );
    // Fixtures sit in a directory named after a target, so none is silently skipped.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for dir in files_in(&root).into_iter().chain(
        std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .map(|e| e.expect("a readable directory entry").path())
            .filter(|p| p.is_dir()),
    ) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            dir.is_dir() && names.contains(&name) || name == "README.md",
            "{} is not a target's fixture directory",
            dir.display()
        );
    }
}

#[test]
fn sip_screen() {
    replay("sip_screen");
}

#[test]
fn sip_parse() {
    replay("sip_parse");
}

#[test]
fn sdp() {
    replay("sdp");
}

#[test]
fn rtp() {
    replay("rtp");
}

#[test]
fn rtcp() {
    replay("rtcp");
}

#[test]
fn dtmf() {
    replay("dtmf");
}

#[test]
fn digest() {
    replay("digest");
}

#[test]
fn config() {
    replay("config");
}
