//! Commands about the server rather than a key: they run on the connection's executor and
//! reach the other executors (flush_all, cache_memlimit) through the mesh.
//!
//! Those with process-wide effects (flush_all, cache_memlimit, stats) are barriers: the
//! remote work queued before them in the pipeline is finished first
//! (`Output::resolve`), so `set k; flush_all; get k` behaves as written.

pub mod cache_memlimit;
pub mod config;
pub mod flush_all;
pub mod refresh_certs;
pub mod shutdown;
pub mod stats;
pub mod verbosity;
pub mod version;

/// Appends `bytes` unless the client asked for no reply.
fn reply(out: &mut Vec<u8>, bytes: &[u8], noreply: bool) {
    if !noreply {
        out.extend_from_slice(bytes);
    }
}
