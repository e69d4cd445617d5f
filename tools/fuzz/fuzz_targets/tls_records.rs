#![no_main]
//! `cargo fuzz run tls_records`: see tools/fuzz/README.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::tls_records(data));
