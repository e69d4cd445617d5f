//! Units, limits and sizes that several readers of the table share: the byte units `-I`
//! and `-m` take, the read-buffer slack, the `-t` and `-m` caps. A leaf of `config/`.

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * 1024;
pub(super) const GIB: u64 = 1024 * 1024 * 1024;
/// Room for a storage command line in front of a maximum-size value.
pub(super) const READ_BUF_SLACK: usize = 4 * 1024;

/// Formats a byte count the way `-I` takes it: `1m`, `512k`, `1g` or plain bytes.
pub(crate) fn fmt_size(n: u64) -> String {
    if n != 0 && n.is_multiple_of(GIB) {
        format!("{}g", n / GIB)
    } else if n != 0 && n.is_multiple_of(MIB) {
        format!("{}m", n / MIB)
    } else if n != 0 && n.is_multiple_of(KIB) {
        format!("{}k", n / KIB)
    } else {
        n.to_string()
    }
}

/// The most executors `-t` takes.
pub(super) const MAX_THREADS: u64 = 1024;
/// 16 TiB in megabytes: far beyond any machine, small enough that bytes fit a u64.
pub(super) const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;

/// All available CPUs, capped at the `-t` maximum.
pub(super) fn default_threads() -> usize {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    n.min(MAX_THREADS as usize)
}
