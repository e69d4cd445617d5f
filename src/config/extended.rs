//! memcached's `-o key[=value],key[=value],...`: the table's `-o` keys, the memcached keys
//! accepted with a warning, and the families that are errors.

use super::apply::apply;
use super::error::ConfigError;
use super::schema::Kind;
use super::table::{Layer, TABLE};
use super::value::Input;

/// Why a memcached `-o` key is accepted but has no effect, or `None` if it is not one.
fn ignored(key: &str) -> Option<&'static str> {
    IGNORED_EXT.iter().find_map(|&(k, no_form, why)| {
        let hit = key == k || (no_form && key.strip_prefix("no_") == Some(k));
        hit.then_some(why)
    })
}

/// Applies one `-o` argument to `l`.
pub(super) fn parse(list: &str, l: &mut Layer) -> Result<(), ConfigError> {
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (key, val) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let name = format!("-o {key}");
        if let Some(entry) = TABLE.iter().find(|e| e.row.ext == Some(key)) {
            // Switches may be given bare; everything else needs its value.
            let bare_ok = matches!(
                entry.row.kind,
                Kind::OnOff | Kind::SessionCache | Kind::KernelTls
            );
            if val.is_none() && !bare_ok {
                return Err(ConfigError::MissingExtValue {
                    name,
                    key: key.to_string(),
                });
            }
            apply(entry, &name, Input::Text(val), l)?;
        } else if let Some(&(_, what, _)) =
            UNSUPPORTED_EXT.iter().find(|(p, _, _)| key.starts_with(p))
        {
            return Err(ConfigError::Unsupported { name, what });
        } else if let Some(why) = ignored(key) {
            l.warn(format!("{name} ignored: {why}"));
        } else {
            return Err(ConfigError::UnknownExtended(key.to_string()));
        }
    }
    Ok(())
}

/// memcached `-o` keys accepted with a warning: (key, whether `no_KEY` is accepted too,
/// why it has no effect), in `-h` order.
pub(super) const IGNORED_EXT: &[(&str, bool, &str)] = &[
    (
        "maxconns_fast",
        true,
        "tessera has one policy for connections over -c",
    ),
    ("hashpower", false, "tessera's table grows by itself"),
    ("no_hashexpand", false, "tessera's table grows by itself"),
    ("hash_algorithm", false, "tessera picks its own hash"),
    ("lru_crawler", true, "tessera has no LRU crawler"),
    ("lru_crawler_sleep", false, "tessera has no LRU crawler"),
    ("lru_crawler_tocrawl", false, "tessera has no LRU crawler"),
    ("lru_maintainer", true, "tessera has no segmented LRU"),
    ("hot_lru_pct", false, "tessera has no segmented LRU"),
    ("warm_lru_pct", false, "tessera has no segmented LRU"),
    ("hot_max_factor", false, "tessera has no segmented LRU"),
    ("warm_max_factor", false, "tessera has no segmented LRU"),
    ("temporary_ttl", false, "tessera has no segmented LRU"),
    ("modern", true, "tessera has a single set of defaults"),
    ("slab_reassign", true, "tessera has no slab allocator"),
    ("slab_automove", true, "tessera has no slab allocator"),
    (
        "slab_automove_ratio",
        false,
        "tessera has no slab allocator",
    ),
    (
        "slab_automove_window",
        false,
        "tessera has no slab allocator",
    ),
    (
        "slab_automove_freeratio",
        false,
        "tessera has no slab allocator",
    ),
    ("slab_chunk_max", false, "tessera has no slab allocator"),
    ("slab_sizes", false, "tessera has no slab allocator"),
    ("no_chunked_items", false, "tessera has no slab allocator"),
    ("large_memory_pages", false, "tessera has no slab allocator"),
    (
        "tail_repair_time",
        false,
        "tessera has no LRU tail to repair",
    ),
    (
        "watcher_logbuf_size",
        false,
        "tessera has no watch log buffers",
    ),
    (
        "worker_logbuf_size",
        false,
        "tessera has no watch log buffers",
    ),
    ("track_sizes", false, "'stats sizes' is not supported"),
    ("inline_ascii_resp", true, "responses are built one way"),
    (
        "drop_privileges",
        true,
        "tessera does not sandbox itself; use systemd's sandboxing",
    ),
    (
        "read_buf_mem_limit",
        false,
        "use -o read_buf_max (a per-connection limit) instead",
    ),
    (
        "resp_obj_mem_limit",
        false,
        "use -o read_buf_max (a per-connection limit) instead",
    ),
    ("meta_response_old", false, "meta responses have one format"),
    ("sock_cookie_id", false, "socket cookies are not set"),
];

/// memcached `-o` key families that are errors: (prefix, what is not supported).
pub(super) const UNSUPPORTED_EXT: &[(&str, &str, &str)] = &[
    ("ext_", "extstore is not supported", "extstore"),
    ("proxy_", "the memcached proxy is not supported", "proxy"),
];
