//! config get / config set (ElastiCache auto discovery): `config get cluster` answers the
//! node list; `config set cluster <flags> <bytes> [noreply]` and a data block replace it.
//! The command exists only with a `[cluster]` list or `-o cluster_config_set`.

use crate::cluster::{MAX_PAYLOAD, SetError};
use crate::protocol::num::{strtol32, strtoul32};
use crate::protocol::{Line, Parsed, Reply};
use crate::server::Shared;
use crate::stats::ShardStats;

/// config get / set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config<'a> {
    /// `config get <key>`.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// `config set <key> <flags> <bytes> [noreply]` and its data block.
    Set {
        /// The key.
        key: &'a [u8],
        /// The data block.
        data: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
}

/// Parses `config get <key>` or `config set ...` (and waits for the data block).
pub fn parse<'a>(l: &Line<'a>) -> Parsed<Config<'a>> {
    let nt = l.ntokens();
    match (l.get(1), nt) {
        (b"get", 4) => l.done(Config::Get { key: l.get(2) }),
        (b"set", 6 | 7) => {
            let noreply = nt == 7 && l.noreply();
            if nt == 7 && !noreply {
                return l.error(Reply::Error, false);
            }
            let (Some(_flags), Some(vlen)) = (strtoul32(l.get(3)), strtol32(l.get(4))) else {
                return l.error(Reply::BadFormat, noreply);
            };
            let Ok(vlen) = usize::try_from(vlen) else {
                return l.error(Reply::BadFormat, noreply);
            };
            if vlen > MAX_PAYLOAD {
                let line = b"SERVER_ERROR object too large for cache\r\n";
                return l.error_swallowing(Reply::Line(line), noreply, vlen + 2);
            }
            let key = l.get(2);
            l.with_data(vlen, noreply, |data| Config::Set { key, data, noreply })
        }
        _ => l.error(Reply::Error, false),
    }
}

const UNKNOWN_CONFIG_KEY: &[u8] = b"CLIENT_ERROR unknown config key (only 'cluster')\r\n";

impl Config<'_> {
    /// Answers or applies it.
    pub fn run(self, shared: &Shared, stats: &ShardStats, out: &mut Vec<u8>) {
        match self {
            Config::Get { key } => get(key, shared, stats, out),
            Config::Set { key, data, noreply } => {
                let reply = set(key, data, shared, stats);
                super::reply(out, &reply, noreply);
            }
        }
    }
}

/// `config get cluster`: ElastiCache's auto-discovery reply.
fn get(key: &[u8], shared: &Shared, stats: &ShardStats, out: &mut Vec<u8>) {
    stats.cmd_config_get.incr();
    if key != b"cluster" {
        out.extend_from_slice(UNKNOWN_CONFIG_KEY);
        return;
    }
    match shared.cluster.get() {
        Some(c) => out.extend_from_slice(&c.reply()),
        None => out.extend_from_slice(
            b"SERVER_ERROR no cluster node list yet (config set cluster, or [cluster] in the \
              config file)\r\n",
        ),
    }
}

/// `config set cluster`: replaces the node list (with a higher version); the reply line.
fn set(key: &[u8], data: &[u8], shared: &Shared, stats: &ShardStats) -> Vec<u8> {
    if !shared.config.cluster_config_set {
        return b"CLIENT_ERROR config set not allowed (start with -o cluster_config_set)\r\n"
            .to_vec();
    }
    stats.cmd_config_set.incr();
    if key != b"cluster" {
        return UNKNOWN_CONFIG_KEY.to_vec();
    }
    let line = match shared.cluster.set(data) {
        Ok(c) => {
            let nodes: Vec<String> = c.nodes.iter().map(ToString::to_string).collect();
            eprintln!(
                "tessera: config set cluster: version {}, {} node(s): {}",
                c.version,
                c.nodes.len(),
                nodes.join(" ")
            );
            return b"STORED\r\n".to_vec();
        }
        Err(SetError::Invalid(e)) => format!("CLIENT_ERROR bad cluster config: {e}"),
        Err(SetError::Stale { given, current }) => format!(
            "CLIENT_ERROR cluster version {given} is not above the current {current} \
             (clients ignore a list whose version did not go up)"
        ),
    };
    // One line: nothing from the input can break the reply framing.
    format!("{}\r\n", line.replace(['\r', '\n'], " ")).into_bytes()
}
