//! The final configuration: built-in defaults, then the file's layer, then the command
//! line's, validated into a [`Config`]; and what a `Config` shows in `stats settings`.
//!
//! The top of `config/`: it runs the readers ([`super::cli`], [`super::file`]) over the
//! table ([`super::table`]).

use std::path::Path;

use super::cli::{self, Command};
use super::error::{ConfigError, Range};
use super::file;
use super::schema::{Kind, Live, Shows, Stat, Value};
use super::table::{Config, Entry, Layer, TABLE};
use super::tls::TlsSettings;
use super::units::{MIB, READ_BUF_SLACK, fmt_size};
use crate::cluster::ClusterConfig;

/// Parses the command line (without argv\[0\]) into a [`Command`].
///
/// `-h`, `-V` and `-i` return [`Command::Print`] as soon as they are reached. Otherwise
/// the `--config` file (if any) is loaded, the flags are applied on top of it in order,
/// and the result is validated.
pub fn parse_args(args: &[String]) -> Result<Command, ConfigError> {
    let (layer, config_file) = match cli::parse(args)? {
        cli::Parsed::Print(cmd) => return Ok(cmd),
        cli::Parsed::Run(layer, file) => (layer, file),
    };
    let file = match &config_file {
        Some(path) => Some(file::load(path)?),
        None => None,
    };
    let mut cfg = build(file, *layer)?;
    cfg.config_file = config_file;
    Ok(Command::Run(Box::new(cfg)))
}

/// Re-reads the `[cluster]` node list of a config file (on SIGHUP). The whole file must
/// still be valid; `Ok(None)` when it has no node list.
pub fn read_cluster(path: &Path) -> Result<Option<ClusterConfig>, ConfigError> {
    Ok(file::load(path)?.cluster.flatten())
}

/// Builds the final configuration: defaults, then the file, then the command line.
pub(super) fn build(file: Option<Layer>, cli: Layer) -> Result<Config, ConfigError> {
    let explicit_read_buf =
        cli.read_buf_max.is_some() || file.as_ref().is_some_and(|f| f.read_buf_max.is_some());
    let mut cfg = Config::default();
    if let Some(f) = file {
        f.apply(&mut cfg);
    }
    cli.apply(&mut cfg);
    let needed = cfg.item_size_max.saturating_add(READ_BUF_SLACK);
    if !explicit_read_buf && cfg.read_buf_max < needed {
        cfg.read_buf_max = needed;
    }
    cfg.validate()?;
    Ok(cfg)
}

impl Config {
    /// Memory limit in bytes.
    pub fn memory_limit_bytes(&self) -> u64 {
        self.memory_limit_mb.saturating_mul(MIB)
    }

    /// Checks every rule a configuration must satisfy (each numeric setting's range, and
    /// rules across settings such as "item size at most half the memory limit").
    /// [`parse_args`] only returns configurations that pass; this is for code that builds a
    /// `Config` by hand.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for e in TABLE {
            let Some(get) = e.get else { continue };
            let name = match (e.row.flag, e.row.ext) {
                (Some(f), _) => f.display_name(),
                (None, Some(key)) => format!("-o {key}"),
                (None, None) => continue,
            };
            check_range(e, &name, get(self))?;
        }
        if self.listen.is_empty() && self.unix_socket.is_none() {
            return Err(ConfigError::NothingToListen);
        }
        let item = self.item_size_max as u64;
        if item > self.memory_limit_bytes() / 2 {
            return Err(ConfigError::ItemTooLarge {
                item,
                memory_mb: self.memory_limit_mb,
            });
        }
        if self.read_buf_max < self.item_size_max.saturating_add(READ_BUF_SLACK) {
            return Err(ConfigError::ReadBufTooSmall {
                read_buf: self.read_buf_max as u64,
                item,
            });
        }
        Ok(())
    }

    /// The `stats settings` lines, in memcached's order: each name and what it shows
    /// (`live` gives the values commands can change after startup).
    pub fn stats_settings(
        &self,
        tls: Option<&TlsSettings>,
        mut live: impl FnMut(Live) -> String,
        mut line: impl FnMut(&'static str, String),
    ) {
        let mut stats: Vec<(&Entry, Stat)> = TABLE
            .iter()
            .filter_map(|e| e.row.stats.map(|s| (e, s)))
            .collect();
        stats.sort_by_key(|(_, s)| s.rank);
        for (e, s) in stats {
            let field = || e.get.map_or(Value::Unset, |get| get(self));
            let value = match s.shows {
                Shows::Field => field().show(),
                Shows::Bool(no, yes) => {
                    let on = matches!(field(), Value::Bool(true));
                    if on { yes } else { no }.to_string()
                }
                Shows::Fixed(v) => v.to_string(),
                Shows::Live(what) => live(what),
                Shows::TlsEnabled => if tls.is_some() { "yes" } else { "no" }.to_string(),
                Shows::Tls(show) => match tls {
                    Some(t) => show(t),
                    None => continue,
                },
            };
            line(s.name, value);
        }
    }
}

/// A numeric field against its row's range (for configurations built by hand).
fn check_range(e: &Entry, name: &str, v: Value) -> Result<(), ConfigError> {
    let (n, range) = match (e.row.kind, v) {
        (Kind::Num(lo, hi), Value::Num(n)) => (n, Range::Num(lo, hi)),
        (Kind::Num(lo, hi), Value::Int(i)) => (u64::try_from(i).unwrap_or(0), Range::Num(lo, hi)),
        (Kind::Size(lo, hi), Value::Num(n)) => (n, Range::Size(lo, hi)),
        (Kind::Mask, Value::Num(n)) => (n, Range::Num(0, 0o777)),
        _ => return Ok(()),
    };
    let (lo, hi, shown) = match range {
        Range::Size(lo, hi) => (lo, hi, fmt_size(n)),
        Range::Num(lo, hi) => (lo, hi, n.to_string()),
        _ => return Ok(()),
    };
    if (lo..=hi).contains(&n) {
        return Ok(());
    }
    Err(ConfigError::OutOfRange {
        name: name.to_string(),
        value: shown,
        range,
    })
}
