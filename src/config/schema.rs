//! What a row of the settings table says, and the macro that turns the table into
//! `Config`, its defaults, the per-source `Layer` and the code that moves a parsed value
//! into its field (all made in `table.rs`, which this module does not name).
//!
//! A row states everything about one setting once: the `Config` field and its type and
//! default (when it has one), its flags, its `-o` key, its config-file key, how its values
//! are parsed ([`Kind`]), its `-h` lines and its `stats settings` line. The command line,
//! `-o`, the config file, `-h`, `stats settings` and the `config/default.toml` test all read
//! the rows; none of them names a setting.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cluster::ClusterConfig;

use super::listen::Listener;
use super::tls::TlsSettings;
use super::units::fmt_size;

/// Whether a flag takes a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Arg {
    /// A switch.
    None,
    /// `-p 11211`, `-p11211`, `--port=11211`, `--port 11211`.
    Required,
    /// Long form only: `--verbose=N`; the short form never takes one.
    Optional,
}

/// A command-line flag: memcached's `getopt_long` entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flag {
    pub(super) short: Option<char>,
    pub(super) long: Option<&'static str>,
    /// A second long name (memcached's `-h` spells `--napi_ids` so).
    pub(super) alias: Option<&'static str>,
    pub(super) arg: Arg,
    /// What `-h` shows after the long name (`=<num>`), if anything.
    pub(super) metavar: &'static str,
}

impl Flag {
    /// How messages name it: `-p` if it has a short form, else `--name`.
    pub(super) fn display_name(&self) -> String {
        match (self.short, self.long) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => String::new(),
        }
    }
}

/// A flag with a short and a long form.
pub(super) const fn flag(short: char, long: &'static str, arg: Arg, metavar: &'static str) -> Flag {
    Flag {
        short: Some(short),
        long: Some(long),
        alias: None,
        arg,
        metavar,
    }
}

/// How a setting's values are parsed; the same kind serves the command line, `-o` and
/// the file.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// A decimal integer in `lo..=hi` (an integer in the file).
    Num(u64, u64),
    /// A byte size with an optional k/m/g suffix in `lo..=hi` (bytes or a string in the file).
    Size(u64, u64),
    /// A permission mask in octal.
    Mask,
    /// A file name.
    Path,
    /// One character.
    Char,
    /// A flag that turns something on (a boolean in the file).
    Switch,
    /// `-o key` (on) or `-o key=on|off|...` (a boolean in the file).
    OnOff,
    /// A UDP port: accepted, warned about unless 0, stored as 0.
    Udp,
    /// `-v` counts, `--verbose=N` sets (an integer in the file).
    Verbose,
    /// `-l` entries.
    Listen,
    /// The admin listener's address.
    AdminAddr,
    /// A TLS option, kept as given until startup checks it (a string or an integer in the
    /// file).
    Text,
    /// `ssl_session_cache`: bare, or a value that is on only when true, 1 or yes.
    SessionCache,
    /// `ssl_kernel_tls`: bare (auto) or auto/on/off (a boolean means on/off in the file).
    KernelTls,
    /// Accepted with a warning saying why it has no effect (a boolean in the file: only
    /// `true` warns).
    Ignored(&'static str),
    /// Accepted with its value and a warning.
    IgnoredWithValue(&'static str),
    /// Accepted silently: nothing to do.
    Accepted,
    /// A memcached feature tessera does not have: an error.
    Unsupported(&'static str),
    /// `-B`: ascii or auto.
    Protocol,
    /// `-h`.
    Help,
    /// `-i`.
    License,
    /// `-V`.
    Version,
    /// `--config`.
    ConfigFile,
    /// `-o`.
    Extended,
    /// `[cluster] version`.
    ClusterVersion,
    /// `[cluster] nodes`.
    ClusterNodes,
    /// Not settable: a `stats settings` line only.
    Report,
}

/// The live value behind a `stats settings` line that a command can change after startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// `cache_memlimit` changes it.
    MaxBytes,
    /// `verbosity` changes it.
    Verbosity,
    /// The executors actually running.
    Threads,
    /// `config set cluster` changes it.
    ClusterVersion,
    /// `config set cluster` changes it.
    ClusterNodes,
}

/// What a `stats settings` line shows.
#[derive(Clone, Copy, Debug)]
pub enum Shows {
    /// The field's value.
    Field,
    /// A boolean field as (false, true).
    Bool(&'static str, &'static str),
    /// Always this.
    Fixed(&'static str),
    /// Runtime state.
    Live(Live),
    /// Whether TLS is on: yes / no.
    TlsEnabled,
    /// From the checked TLS settings; no line without TLS.
    Tls(fn(&TlsSettings) -> String),
}

/// A `stats settings` line: its place in memcached's order, its name, what it shows.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub(super) rank: u8,
    /// The name after `STAT`.
    pub name: &'static str,
    /// What it shows.
    pub shows: Shows,
}

/// A `stats settings` line showing the field as is.
pub(super) const fn stat(rank: u8, name: &'static str) -> Option<Stat> {
    Some(Stat {
        rank,
        name,
        shows: Shows::Field,
    })
}

/// A `stats settings` line showing something else than the field as is.
pub(super) const fn stat_of(rank: u8, name: &'static str, shows: Shows) -> Option<Stat> {
    Some(Stat { rank, name, shows })
}

/// A config-file key: its place in the list serde prints for an unknown key, and its path
/// (`port`, `tls.kernel`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Toml {
    pub(super) rank: u8,
    pub(super) path: &'static str,
}

pub(super) const fn toml(rank: u8, path: &'static str) -> Option<Toml> {
    Some(Toml { rank, path })
}

impl Toml {
    /// The `[table]` it is in (`""` for the top level) and its key there.
    pub(super) fn split(&self) -> (&'static str, &'static str) {
        self.path.split_once('.').unwrap_or(("", self.path))
    }
}

/// One setting, as the table states it (everything but the `Config` field).
#[derive(Clone, Copy, Debug)]
pub(super) struct Row {
    pub(super) flag: Option<Flag>,
    /// The `-o` key.
    pub(super) ext: Option<&'static str>,
    pub(super) toml: Option<Toml>,
    pub(super) kind: Kind,
    /// `-h` lines: the first follows the flag or key, the others are continuation lines,
    /// except lines starting with `-`, which stand alone (`-vv`). `{default}` and `{max}`
    /// stand for the default and the range's top.
    pub(super) help: &'static [&'static str],
    pub(super) stats: Option<Stat>,
}

/// A row with nothing set, for `..ROW`.
pub(super) const ROW: Row = Row {
    flag: None,
    ext: None,
    toml: None,
    kind: Kind::Report,
    help: &[],
    stats: None,
};

/// A value on its way into, or out of, a `Config` field.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Num(u64),
    Int(i64),
    Bool(bool),
    Char(char),
    Path(PathBuf),
    Text(String),
    Listen(Vec<Listener>),
    Addr(SocketAddr),
    Cluster(ClusterConfig),
    /// An optional setting that is not set.
    Unset,
}

impl Value {
    /// As `stats settings` shows it.
    pub(super) fn show(&self) -> String {
        match self {
            Value::Num(n) => n.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::Char(c) => c.to_string(),
            Value::Path(p) => p.display().to_string(),
            Value::Text(t) => t.clone(),
            Value::Listen(l) => {
                let texts: Vec<String> = l.iter().map(ToString::to_string).collect();
                texts.join(",")
            }
            Value::Addr(a) => a.to_string(),
            Value::Cluster(c) => c.nodes.len().to_string(),
            Value::Unset => "off".to_string(),
        }
    }

    /// As `-h` shows a default of this kind.
    pub(super) fn help(&self, kind: Kind) -> String {
        match (kind, self) {
            (Kind::Size(..), Value::Num(n)) => fmt_size(*n),
            (Kind::Mask, Value::Num(n)) => format!("{n:o}"),
            _ => self.show(),
        }
    }
}

/// A field type a [`Value`] can move into and out of.
pub(super) trait FieldValue: Sized {
    /// `None` when the value is of another type: the table gave the field a kind that
    /// does not produce its type (the `every_row_takes_its_kind` test catches it).
    fn from_value(v: Value) -> Option<Self>;
    fn to_value(&self) -> Value;
}

macro_rules! unsigned_field {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::Num(n) => <$t>::try_from(n).ok(),
                    _ => None,
                }
            }
            fn to_value(&self) -> Value {
                Value::Num(*self as u64)
            }
        }
    )*};
}
unsigned_field!(u8, u16, u32, u64, usize);

impl FieldValue for i32 {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Num(n) => i32::try_from(n).ok(),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

macro_rules! plain_field {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl FieldValue for $t {
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn to_value(&self) -> Value {
                Value::$variant(self.clone())
            }
        }
    )*};
}
plain_field!(
    bool => Bool,
    char => Char,
    PathBuf => Path,
    String => Text,
    Vec<Listener> => Listen,
    SocketAddr => Addr,
    ClusterConfig => Cluster,
);

impl<T: FieldValue> FieldValue for Option<T> {
    fn from_value(v: Value) -> Option<Self> {
        T::from_value(v).map(Some)
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Unset, T::to_value)
    }
}

/// The table: `$(/// docs)* name [: Type = default] => Row { ... };` per setting.
///
/// Makes `Config` (the rows with a type, in table order, plus `warnings`), its `Default`,
/// `Layer` (each field as an `Option`: what one source set) with `apply`, `Entry` (a row
/// with the code that reaches its field) and `TABLE`. `Entry` is made here, in the table's
/// module, because it names `Layer` and `Config`: this module stays below the table.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident $(: $ty:ty = $default:expr)? => $row:expr; )*) => {
        $crate::config::schema::config_struct!(@fields []
            $( [$(#[doc = $doc])*] $name $(: $ty)? ; )*
        );

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($( $name: $default, )?)*
                    warnings: Vec::new(),
                }
            }
        }

        /// Settings from one source (file or command line); `None` leaves the value below
        /// alone.
        #[derive(Debug, Default)]
        pub(super) struct Layer {
            $($( pub(super) $name: Option<$ty>, )?)*
            pub(super) warnings: Vec<String>,
        }

        impl Layer {
            /// Puts what this source set over `cfg`.
            pub(super) fn apply(self, cfg: &mut Config) {
                $($(
                    if let Some(v) = self.$name {
                        let _: &$ty = &v;
                        cfg.$name = v;
                    }
                )?)*
                for w in self.warnings {
                    if !cfg.warnings.contains(&w) {
                        cfg.warnings.push(w);
                    }
                }
            }
        }

        /// A row and the code that reaches its field, if it has one.
        #[derive(Clone, Copy, Debug)]
        pub(super) struct Entry {
            /// The field's name, or the setting's for rows without one.
            pub(super) name: &'static str,
            pub(super) row: $crate::config::schema::Row,
            /// Moves a parsed value into the row's field of a `Layer`; `false` when the
            /// value does not fit the field (a table mistake).
            pub(super) set: Option<fn(&mut Layer, $crate::config::schema::Value) -> bool>,
            /// Reads the row's field.
            pub(super) get: Option<fn(&Config) -> $crate::config::schema::Value>,
        }

        /// Every setting, in `-h` order.
        pub(super) static TABLE: &[Entry] = &[
            $( Entry {
                name: stringify!($name),
                row: $row,
                set: $crate::config::schema::setter!($name $(: $ty)?),
                get: $crate::config::schema::getter!($name $(: $ty)?),
            }, )*
        ];
    };
}

/// Builds `Config` from the rows that have a field (a row without one adds nothing).
macro_rules! config_struct {
    (@fields [$($done:tt)*]) => {
        /// One fully validated server configuration: a field per setting of the table in
        /// `table.rs`, where each is documented with its flag, key and range.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $($done)*
            /// Warnings produced while parsing (ignored flags, …), printed at startup.
            pub warnings: Vec<String>,
        }
    };
    (@fields [$($done:tt)*] [$($doc:tt)*] $name:ident : $ty:ty ; $($rest:tt)*) => {
        $crate::config::schema::config_struct!(@fields [$($done)* $($doc)* pub $name: $ty,] $($rest)*);
    };
    (@fields [$($done:tt)*] [$($doc:tt)*] $name:ident ; $($rest:tt)*) => {
        $crate::config::schema::config_struct!(@fields [$($done)*] $($rest)*);
    };
}

macro_rules! setter {
    ($name:ident : $ty:ty) => {
        Some(|l: &mut Layer, v: $crate::config::schema::Value| {
            match <$ty as $crate::config::schema::FieldValue>::from_value(v) {
                Some(v) => {
                    l.$name = Some(v);
                    true
                }
                None => false,
            }
        })
    };
    ($name:ident) => {
        None
    };
}

macro_rules! getter {
    ($name:ident : $ty:ty) => {
        Some(|c: &Config| $crate::config::schema::FieldValue::to_value(&c.$name))
    };
    ($name:ident) => {
        None
    };
}

/// `-o` keys and `--config`: long form only.
pub(super) const fn long(long: &'static str, arg: Arg, metavar: &'static str) -> Option<Flag> {
    Some(Flag {
        short: None,
        long: Some(long),
        alias: None,
        arg,
        metavar,
    })
}

/// The `-h` line of a flag accepted with a warning.
macro_rules! ignored {
    ($why:literal, $help:literal) => {
        $crate::config::schema::Row {
            kind: $crate::config::schema::Kind::Ignored($why),
            help: &[concat!("(ignored: ", $help, ")")],
            ..$crate::config::schema::ROW
        }
    };
}

/// The `stats settings` line of a TLS setting (only with TLS on).
macro_rules! tls_stat {
    ($rank:literal, $name:literal, |$s:ident| $show:expr) => {
        $crate::config::schema::stat_of(
            $rank,
            $name,
            $crate::config::schema::Shows::Tls(|$s: &$crate::config::tls::TlsSettings| -> String {
                $show
            }),
        )
    };
}

pub(super) use {config_struct, getter, ignored, setter, settings, tls_stat};
