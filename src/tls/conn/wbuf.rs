//! The executor's pool of TLS write buffers (`ssl_wbuf_size` each), and how much plaintext
//! one of them carries once encrypted. A leaf: the write side ([`super::write`]) and the
//! in-memory server ([`super::mem`]) borrow from it.

use std::cell::RefCell;
use std::rc::Rc;

/// Bytes per record added by encryption (header, explicit nonce, tag, content type), rounded up.
const RECORD_OVERHEAD: usize = 64;
/// Largest plaintext per record.
const MAX_FRAGMENT: usize = 16384;

/// Free write buffers of one executor (`ssl_wbuf_size` each).
#[derive(Debug, Clone)]
pub struct WbufPool {
    size: usize,
    free: Rc<RefCell<Vec<Vec<u8>>>>,
}

/// Buffers kept for reuse per executor; beyond that, returned buffers are freed.
const POOL_KEEP: usize = 64;

impl WbufPool {
    /// A pool of `size`-byte buffers.
    pub fn new(size: usize) -> Self {
        WbufPool {
            size: size.max(1024),
            free: Rc::new(RefCell::new(Vec::new())),
        }
    }

    pub(super) fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; self.size])
    }

    pub(super) fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        // A send that failed in the ring may leave its buffer behind, empty: not kept.
        if free.len() < POOL_KEEP && buf.len() == self.size {
            free.push(buf);
        }
    }

    /// Plaintext bytes that fit one buffer once encrypted.
    pub(super) fn plain_per_buffer(&self) -> usize {
        let records = self.size.div_ceil(MAX_FRAGMENT);
        self.size.saturating_sub(records * RECORD_OVERHEAD).max(1)
    }
}
