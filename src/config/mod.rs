//! Configuration: memcached's command-line flags and a TOML file whose keys mirror them,
//! merged into one validated [`Config`].
//!
//! Every setting is a row of one table ([`table`]): its field, flags, `-o` key, file key,
//! kind, range, default, `-h` lines and `stats settings` line. The readers below take
//! their settings from it:
//!
//! ```text
//! argv ─▶ cli (getopt) ─┬─▶ extended (-o) ─┐
//!                       └──────────────────┼─▶ apply(row, value) ─▶ Layer ─┐
//! --config FILE ─▶ file (serde, TOML) ─────┘                               │
//! defaults < file layer < command-line layer ─▶ build ─▶ validate ─▶ Config ◀┘
//! ```
//!
//! Precedence: built-in defaults < `--config FILE` < command-line flags, wherever
//! `--config` appears on the command line. Listeners are parsed into [`Listener`]s once;
//! TLS options are checked into [`TlsSettings`] at startup ([`Config::tls_settings`]).

mod cli;
mod error;
mod extended;
mod file;
mod help;
mod listen;
mod schema;
mod table;
mod tls;
mod value;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{ConfigError, ListenError, Range, TlsError};
pub use listen::{Host, ListenMode, Listener};
pub use schema::{Live, Shows, Stat};
pub use table::Config;
pub use tls::{Ciphers, KtlsMode, MinVersion, TlsSettings, VerifyMode, select_suites};

use crate::cluster::ClusterConfig;
use schema::{Entry, Kind, Value};
use table::{Layer, TABLE};
use value::{
    Input, MIB, READ_BUF_SLACK, int_in_range, mask_value, parse_admin_listen, parse_num,
    parse_octal_mask, parse_path, parse_size, size_value, text_value,
};

/// The most executors `-t` takes.
const MAX_THREADS: u64 = 1024;
/// 16 TiB in megabytes: far beyond any machine, small enough that bytes fit a u64.
const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;

/// All available CPUs, capped at the `-t` maximum.
fn default_threads() -> usize {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    n.min(MAX_THREADS as usize)
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this text (help, version, license) to stdout as is — it ends with a
    /// newline — and exit 0.
    Print(String),
}

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
fn build(file: Option<Layer>, cli: Layer) -> Result<Config, ConfigError> {
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

impl Layer {
    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// Parses `input` by `entry`'s kind and puts the value into `l`; `name` says where it
/// came from (`-p`, `-o shard_queue`, `tessera.toml: port`).
fn apply(entry: &Entry, name: &str, input: Input<'_>, l: &mut Layer) -> Result<(), ConfigError> {
    use toml::Value as T;
    let text = match input {
        Input::Text(v) => Some(v.unwrap_or("")),
        Input::Toml(_) => None,
    };
    let wrong = |expected| ConfigError::WrongType {
        name: name.to_string(),
        expected,
    };
    let value = match (entry.row.kind, input) {
        (Kind::Num(lo, hi), Input::Toml(T::Integer(i))) => {
            Value::Num(int_in_range(name, *i, lo, hi)?)
        }
        (Kind::Num(lo, hi), _) => Value::Num(parse_num(name, text.unwrap_or(""), lo, hi)?),
        (Kind::Size(lo, hi), Input::Toml(v)) => Value::Num(size_value(name, v, lo, hi)?),
        (Kind::Size(lo, hi), _) => Value::Num(parse_size(name, text.unwrap_or(""), lo, hi)?),
        (Kind::Mask, Input::Toml(v)) => Value::Num(mask_value(name, v)?),
        (Kind::Mask, _) => Value::Num(parse_octal_mask(name, text.unwrap_or(""))?),
        (Kind::Path, Input::Toml(v)) => Value::Path(parse_path(name, v.as_str().unwrap_or(""))?),
        (Kind::Path, _) => Value::Path(parse_path(name, text.unwrap_or(""))?),
        (Kind::Char, _) => {
            let v = text.unwrap_or("");
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Value::Char(c),
                _ => {
                    return Err(ConfigError::NotAChar {
                        name: name.to_string(),
                        value: v.to_string(),
                    });
                }
            }
        }
        (Kind::Switch, Input::Toml(v)) => Value::Bool(v.as_bool().unwrap_or(false)),
        (Kind::Switch, _) => Value::Bool(true),
        (Kind::OnOff, Input::Toml(v)) => Value::Bool(v.as_bool().unwrap_or(false)),
        (Kind::OnOff, Input::Text(v)) => Value::Bool(value::parse_switch(name, v)?),
        (Kind::Udp, _) => {
            let port = match input {
                Input::Toml(T::Integer(i)) => int_in_range(name, *i, 0, 65535)?,
                _ => parse_num(name, text.unwrap_or(""), 0, 65535)?,
            };
            if port != 0 {
                l.warn(format!("{name} {port} ignored: UDP is not supported"));
            }
            Value::Num(0)
        }
        (Kind::Verbose, Input::Toml(T::Integer(i))) => Value::Num(int_in_range(name, *i, 0, 255)?),
        (Kind::Verbose, _) => Value::Num(parse_num(name, text.unwrap_or(""), 0, 255)?),
        (Kind::Listen, Input::Toml(T::String(s))) => Value::Listen(Listener::parse_list(name, s)?),
        (Kind::Listen, Input::Toml(T::Array(items))) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    T::String(s) => out.extend(Listener::parse_list(name, s)?),
                    _ => return Err(wrong("entries must be strings")),
                }
            }
            Value::Listen(out)
        }
        (Kind::Listen, Input::Toml(_)) => {
            return Err(wrong("expected a string or an array of strings"));
        }
        (Kind::Listen, _) => Value::Listen(Listener::parse_list(name, text.unwrap_or(""))?),
        (Kind::AdminAddr, Input::Toml(v)) => match text_value(v) {
            Some(s) => Value::Addr(parse_admin_listen(name, &s)?),
            None => return Err(wrong("expected \"IP:PORT\" or a port number")),
        },
        (Kind::AdminAddr, _) => Value::Addr(parse_admin_listen(name, text.unwrap_or(""))?),
        (Kind::Text, Input::Toml(v)) => match text_value(v) {
            Some(s) => Value::Text(s),
            None => return Err(wrong("expected a string or an integer")),
        },
        (Kind::Text, _) => Value::Text(text.unwrap_or("").to_string()),
        (Kind::SessionCache, Input::Toml(v)) => Value::Bool(v.as_bool().unwrap_or(false)),
        (Kind::SessionCache, Input::Text(v)) => {
            Value::Bool(matches!(v.unwrap_or("true"), "true" | "1" | "yes"))
        }
        (Kind::KernelTls, Input::Toml(T::Boolean(b))) => {
            Value::Text(if *b { "on" } else { "off" }.to_string())
        }
        (Kind::KernelTls, Input::Toml(v)) => match text_value(v) {
            Some(s) => Value::Text(s),
            None => return Err(wrong("expected a string or an integer")),
        },
        (Kind::KernelTls, Input::Text(v)) => Value::Text(v.unwrap_or("true").to_string()),
        (Kind::Ignored(why), Input::Toml(v)) => {
            if v.as_bool() == Some(true) {
                l.warn(format!("{name} ignored: {why}"));
            }
            return Ok(());
        }
        (Kind::Ignored(why), _) => {
            l.warn(format!("{name} ignored: {why}"));
            return Ok(());
        }
        (Kind::IgnoredWithValue(why), _) => {
            let v = text.unwrap_or("");
            l.warn(format!("{name} {v} ignored: {why}"));
            return Ok(());
        }
        (Kind::Unsupported(what), _) => {
            return Err(ConfigError::Unsupported {
                name: name.to_string(),
                what,
            });
        }
        (Kind::Protocol, _) => {
            return match text.unwrap_or("") {
                "ascii" | "auto" => Ok(()),
                "binary" => Err(ConfigError::BinaryProtocol),
                other => Err(ConfigError::UnknownProtocol {
                    name: name.to_string(),
                    value: other.to_string(),
                }),
            };
        }
        // Nothing to set (`-X`), or handled by the reader (`-h`, `--config`, `-o`, the
        // cluster list).
        _ => return Ok(()),
    };
    match entry.set {
        Some(set) if set(l, value) => Ok(()),
        _ => Err(ConfigError::TableMismatch(entry.name)),
    }
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
        Range::Size(lo, hi) => (lo, hi, value::fmt_size(n)),
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
