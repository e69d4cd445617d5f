#![no_main]
//! `cargo fuzz run text`: see tools/fuzz/README.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::text(data));
