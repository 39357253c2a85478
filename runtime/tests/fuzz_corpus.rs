//! The fuzzers' corpora replayed: every input that `runtime/fuzz/corpus/<target>/` holds (the
//! seeds, what the fuzzers kept for its coverage, and each finding once fixed) goes through its
//! target of `xrvlm_runtime::fuzzing` again, so that a change that brings back a crash, a panic
//! or a broken promise fails here, in CI, without a fuzzer.

use std::fs;
use std::path::{Path, PathBuf};

use xrvlm_runtime::fuzzing::TARGETS;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The files of `dir`, sorted, so that a failure names the same input every run.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_a_cargo_fuzz_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        assert!(
            !inputs(&corpus_dir(name)).is_empty(),
            "{name}: empty corpus"
        );
        let source = format!("fuzz_targets/{name}.rs");
        assert!(fuzz.join(&source).is_file(), "{name}: no {source}");
        assert!(
            manifest.contains(&format!("path = \"{source}\"")),
            "{name}: not a [[bin]] of runtime/fuzz/Cargo.toml"
        );
    }
}

#[test]
fn every_corpus_input_passes_its_target() {
    for (name, target) in TARGETS {
        for input in inputs(&corpus_dir(name)) {
            let data = fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", input.display());
        }
    }
}
