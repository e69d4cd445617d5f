//! A stats report as data: an ordered list of (name, value, kind) entries.
//!
//! `stats` and its sub-reports build one of these and encode it as memcached's
//! `STAT name value` lines ([`Report::write_text`]); the admin listener encodes the same
//! report as Prometheus families, reading each entry's [`Kind`] instead of a list of its own.
//! Nothing here knows where the values come from, so this module imports nothing from the
//! rest of the crate.

use std::borrow::Cow;
use std::fmt;

/// What a value means over time, which decides how `/metrics` exports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Only goes up (until `stats reset`): a Prometheus counter, `tessera_<name>_total`.
    Counter,
    /// A current level: a Prometheus gauge, `tessera_<name>`.
    Gauge,
    /// A description (versions, settings): not a metric of its own.
    Info,
}

/// One value, typed so each encoding formats it itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A count or size.
    Unsigned(u64),
    /// A signed value (`time`, `tcp_backlog`).
    Signed(i64),
    /// Seconds with six decimals, as memcached prints `rusage_user` (`%ld.%06ld`).
    Seconds(f64),
    /// Words, versions, addresses.
    Text(Cow<'static, str>),
}

impl Value {
    /// Whether the value is a number (a Prometheus sample can carry it).
    pub fn is_number(&self) -> bool {
        !matches!(self, Value::Text(_))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Seconds(v) => write!(f, "{v:.6}"),
            Value::Text(v) => f.write_str(v),
        }
    }
}

macro_rules! value_from {
    ($variant:ident: $($t:ty),*) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        })*
    };
}
value_from!(Unsigned: u64, u32, u16, u8);
value_from!(Signed: i64, i32);

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        // usize is at most 64 bits on every target tessera builds for (Linux, 64-bit).
        Value::Unsigned(v as u64)
    }
}

impl From<bool> for Value {
    /// memcached's `0` / `1` (`accepting_conns`).
    fn from(v: bool) -> Self {
        Value::Unsigned(u64::from(v))
    }
}

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

impl From<char> for Value {
    fn from(v: char) -> Self {
        Value::Text(Cow::Owned(v.to_string()))
    }
}

/// One reported stat.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// memcached's name for it.
    pub name: Cow<'static, str>,
    /// Its value.
    pub value: Value,
    /// How it behaves over time.
    pub kind: Kind,
}

impl Entry {
    /// An entry.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Value>, kind: Kind) -> Self {
        Entry {
            name: name.into(),
            value: value.into(),
            kind,
        }
    }

    /// A counter.
    pub fn counter(name: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        Entry::new(name, value, Kind::Counter)
    }

    /// A gauge.
    pub fn gauge(name: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        Entry::new(name, value, Kind::Gauge)
    }

    /// The same value and kind under another name (`forwarded_ops` is reported as
    /// `shard_forwarded_ops`, `items:1:number` is class 1's `number`).
    pub fn named(self, name: impl Into<Cow<'static, str>>) -> Self {
        Entry {
            name: name.into(),
            ..self
        }
    }
}

/// Entries in the order `stats` lists them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    entries: Vec<Entry>,
}

impl Report {
    /// An empty report with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Report {
            entries: Vec::with_capacity(n),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// Appends a counter.
    pub fn counter(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        self.push(Entry::counter(name, value));
    }

    /// Appends a gauge.
    pub fn gauge(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        self.push(Entry::gauge(name, value));
    }

    /// Appends a description.
    pub fn info(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        self.push(Entry::new(name, value, Kind::Info));
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// memcached's text encoding: one `STAT name value` line per entry, then `END`.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        for e in &self.entries {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "STAT {} {}\r\n", e.name, e.value);
        }
        out.extend_from_slice(b"END\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encoding_is_memcacheds() {
        let mut r = Report::default();
        r.gauge("pid", 42u32);
        r.info("version", "1.6.18");
        r.counter("rusage_user", Value::Seconds(0.1234564));
        r.counter("rusage_system", Value::Seconds(2.0));
        r.info("tcp_backlog", -1i32);
        r.info("stat_key_prefix", ':');
        r.gauge("accepting_conns", true);
        let mut out = Vec::new();
        r.write_text(&mut out);
        assert_eq!(
            out,
            b"STAT pid 42\r\nSTAT version 1.6.18\r\nSTAT rusage_user 0.123456\r\n\
              STAT rusage_system 2.000000\r\nSTAT tcp_backlog -1\r\n\
              STAT stat_key_prefix :\r\nSTAT accepting_conns 1\r\nEND\r\n"
        );
        assert!(r.entries()[0].value.is_number());
        assert!(!r.entries()[1].value.is_number());
        let e = Entry::new("forwarded_ops", 3u64, Kind::Counter).named("shard_forwarded_ops");
        assert_eq!(
            (e.name.as_ref(), e.kind),
            ("shard_forwarded_ops", Kind::Counter)
        );
    }
}
