//! Replays the committed corpora (`corpus/<target>/`) through the fuzz targets' bodies with
//! plain `cargo test`: what `smoke.sh` runs where libFuzzer cannot be built (stable).
//!
//! `TESSERA_FUZZ_INPUT=FILE_OR_DIR TESSERA_FUZZ_TARGET=NAME cargo test --no-default-features
//! replay_input -- --nocapture` replays other inputs (a crash artifact, a whole corpus).

use std::path::{Path, PathBuf};

fn target(name: &str) -> fn(&[u8]) {
    match name {
        "text" => tessera_fuzz::text,
        "meta" => tessera_fuzz::meta,
        "tls_records" => tessera_fuzz::tls_records,
        other => panic!("no fuzz target '{other}' (text, meta, tls_records)"),
    }
}

/// The files under `path` (or `path` itself), sorted.
fn inputs(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(name: &str, path: &Path) -> usize {
    let f = target(name);
    let files = inputs(path);
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{name}: {}", file.display());
        f(&data);
    }
    println!(
        "{name}: replayed {} inputs from {}",
        files.len(),
        path.display()
    );
    files.len()
}

fn replay_corpus(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let n = replay(name, &dir);
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn corpus_text() {
    replay_corpus("text");
}

#[test]
fn corpus_meta() {
    replay_corpus("meta");
}

#[test]
fn corpus_tls_records() {
    replay_corpus("tls_records");
}

#[test]
fn replay_input() {
    let (Some(input), Some(name)) = (
        std::env::var_os("TESSERA_FUZZ_INPUT"),
        std::env::var("TESSERA_FUZZ_TARGET").ok(),
    ) else {
        return;
    };
    replay(&name, Path::new(&input));
}
