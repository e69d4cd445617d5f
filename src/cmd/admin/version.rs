//! version: `VERSION <memcached version>` (the version whose behaviour tessera follows).

use crate::server::MEMCACHED_VERSION;

/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version;

impl Version {
    /// Appends the reply.
    pub fn run(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"VERSION ");
        out.extend_from_slice(MEMCACHED_VERSION.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
