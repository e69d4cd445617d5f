//! The bodies of tessera's fuzz targets. Each `fuzz_targets/*.rs` entry point is one call
//! into this library, and `tests/replay.rs` runs the same functions over the committed
//! corpora with plain `cargo test` (stable, no libFuzzer), so both modes test one thing.
//!
//! - [`text`]: arbitrary bytes through the text parser and a whole `Session`.
//! - [`meta`]: input bytes shaped into meta commands (`mg ms md ma mn me`), same checks.
//! - [`tls_records`]: bytes as TLS records arriving at the server side of a connection,
//!   before and after an in-memory handshake.
//!
//! Every target panics only when it finds a bug: a panic inside tessera, or a broken
//! invariant checked here.

mod protocol;
mod tls;

pub use protocol::{meta, meta_stream, text};
pub use tls::tls_records;

/// `TESSERA_FUZZ_VERBOSE=1`: the targets say what each input did (replays, debugging).
pub(crate) fn verbose() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("TESSERA_FUZZ_VERBOSE").is_some_and(|v| v != "0"))
}

/// Reads an input front to back; past the end every read gives zeros / nothing.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// How an input cuts its payload into reads: the first byte `b`, then `b & 7` size bytes.
/// With no size bytes every read is `(b >> 3) + 1` bytes; otherwise the sizes (`s + 1`)
/// repeat in order. Returns the schedule and the payload after it.
pub fn split_schedule(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let mut r = Reader::new(data);
    let b = r.byte();
    let n = (b & 7) as usize;
    let sizes = if n == 0 {
        vec![(b >> 3) as usize + 1]
    } else {
        r.take(n).iter().map(|&s| s as usize + 1).collect()
    };
    (sizes, r.rest())
}

/// `payload` cut by `sizes` (repeated).
pub fn chunks<'a>(payload: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = payload;
    for &s in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(s.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
