//! The config file: TOML whose keys are the table's `toml` keys (the long flag names in
//! snake_case), with `[tls]`, `[cluster]` and `[admin]` tables.
//!
//! serde reads the file against the table: a key the table does not have is an error
//! naming the keys it does (in each key's stated place), and a value of the wrong TOML
//! type is serde's error with its line. The values are then applied in that same order,
//! each by its row's kind, as the command line's are.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::apply::apply;
use super::error::ConfigError;
use super::schema::Kind;
use super::table::{Entry, Layer, TABLE};
use super::value::{Input, int_in_range};
use crate::cluster::{ClusterConfig, Node};

/// The tables under the top level, in the order serde lists them, with the type name its
/// messages give each (`expected struct FileTls`).
const TABLES: [(&str, &str); 3] = [
    ("tls", "struct FileTls"),
    ("cluster", "struct FileCluster"),
    ("admin", "struct FileAdmin"),
];

/// The rows of one `[table]` (`""`: the top level), in their stated order.
fn rows_of(table: &str) -> Vec<&'static Entry> {
    let mut rows: Vec<&'static Entry> = TABLE
        .iter()
        .filter(|e| e.row.toml.is_some_and(|t| t.split().0 == table))
        .collect();
    rows.sort_by_key(|e| e.row.toml.map_or(0, |t| t.rank));
    rows
}

/// The keys of one table as serde lists them; the top level adds the table names.
fn keys_of(table: &str) -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    let all = KEYS.get_or_init(|| {
        let mut all: Vec<Vec<&'static str>> = Vec::new();
        for t in [""].into_iter().chain(TABLES.iter().map(|(t, _)| *t)) {
            let mut keys: Vec<&'static str> = rows_of(t)
                .iter()
                .filter_map(|e| e.row.toml.map(|k| k.split().1))
                .collect();
            if t.is_empty() {
                keys.extend(TABLES.iter().map(|(t, _)| *t));
            }
            all.push(keys);
        }
        all
    });
    let i = TABLES
        .iter()
        .position(|(t, _)| *t == table)
        .map_or(0, |i| i + 1);
    &all[i]
}

/// What the file gave: each key's row and value, in the order they are applied.
#[derive(Default)]
struct FileValues(Vec<(&'static Entry, toml::Value)>);

/// Reads one table (the top level or a `[table]`) against the rows.
struct TableSeed<'a> {
    table: &'static str,
    expecting: &'static str,
    out: &'a mut FileValues,
}

/// Which key of a table a name is: an index into its key list, or an error naming them.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|k| *k == v)
            .ok_or_else(|| E::unknown_field(v, self.0))
    }
}

impl<'de> DeserializeSeed<'de> for TableSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let keys = keys_of(self.table);
        d.deserialize_struct(self.expecting, keys, self)
    }
}

/// A value read as the TOML type a kind takes, so that serde's "invalid type" message
/// names that type (`expected i64`, `expected a boolean`).
fn read_value<'de, A: MapAccess<'de>>(map: &mut A, kind: Kind) -> Result<toml::Value, A::Error> {
    use toml::Value as V;
    let v = match kind {
        Kind::Num(..) | Kind::Udp | Kind::Verbose | Kind::ClusterVersion => {
            map.next_value::<Option<i64>>()?.map(V::Integer)
        }
        Kind::Switch | Kind::OnOff | Kind::Ignored(_) | Kind::SessionCache => {
            map.next_value::<Option<bool>>()?.map(V::Boolean)
        }
        Kind::Path => map.next_value::<Option<String>>()?.map(V::String),
        Kind::ClusterNodes => map
            .next_value::<Option<Vec<String>>>()?
            .map(|n| V::Array(n.into_iter().map(V::String).collect())),
        _ => map.next_value::<Option<toml::Value>>()?,
    };
    // A TOML key always has a value; `Option` only mirrors how serde reads optional keys.
    v.ok_or_else(|| de::Error::custom("missing value"))
}

impl<'de> Visitor<'de> for TableSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let keys = keys_of(self.table);
        let rows = rows_of(self.table);
        while let Some(i) = map.next_key_seed(KeySeed(keys))? {
            match rows.get(i) {
                Some(entry) => {
                    let value = read_value(&mut map, entry.row.kind)?;
                    self.out.0.push((entry, value));
                }
                None => {
                    let (table, expecting) = TABLES[i - rows.len()];
                    map.next_value_seed(OptionalTable(TableSeed {
                        table,
                        expecting,
                        out: self.out,
                    }))?;
                }
            }
        }
        Ok(())
    }
}

/// A `[table]`, read the way serde reads an optional struct field.
struct OptionalTable<'a>(TableSeed<'a>);

impl<'de> DeserializeSeed<'de> for OptionalTable<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalTable<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.deserialize(d)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Reads a config file into a layer.
pub(super) fn load(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::ReadFile {
        path: path.to_path_buf(),
        error,
    })?;
    parse_toml(&text, &path.display().to_string())
}

/// Parses config-file text; `origin` names the file in messages.
pub(super) fn parse_toml(text: &str, origin: &str) -> Result<Layer, ConfigError> {
    let mut values = FileValues::default();
    let seed = TableSeed {
        table: "",
        expecting: "struct FileConfig",
        out: &mut values,
    };
    seed.deserialize(toml::Deserializer::new(text))
        .map_err(|e| {
            let line = e.span().map(|s| {
                let end = s.start.min(text.len());
                text.get(..end).unwrap_or("").matches('\n').count() + 1
            });
            ConfigError::Toml {
                origin: origin.to_string(),
                line,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
    to_layer(values, origin)
}

/// Applies the file's values: the top level, then `[cluster]`, `[admin]` and `[tls]`,
/// each in its keys' order.
fn to_layer(mut values: FileValues, origin: &str) -> Result<Layer, ConfigError> {
    let order = |e: &Entry| {
        let t = e.row.toml.map_or(("", 0), |t| (t.split().0, t.rank));
        let table = ["", "cluster", "admin", "tls"]
            .iter()
            .position(|x| *x == t.0);
        (table, t.1)
    };
    values.0.sort_by_key(|(e, _)| order(e));
    let mut l = Layer::default();
    let has_nodes = values
        .0
        .iter()
        .any(|(e, _)| matches!(e.row.kind, Kind::ClusterNodes));
    let mut version = None;
    for (entry, value) in &values.0 {
        let path = entry.row.toml.map_or("", |t| t.path);
        let name = format!("{origin}: {path}");
        match entry.row.kind {
            Kind::ClusterVersion if !has_nodes => {
                return Err(ConfigError::VersionWithoutNodes(format!(
                    "{origin}: cluster"
                )));
            }
            Kind::ClusterVersion => version = Some(value),
            Kind::ClusterNodes => {
                l.cluster = Some(cluster(&name, version.take(), value, origin, &mut l)?);
            }
            _ => apply(entry, &name, Input::Toml(value), &mut l)?,
        }
    }
    Ok(l)
}

/// The `[cluster]` node list, and its version (1 when not given).
fn cluster(
    name: &str,
    version: Option<&toml::Value>,
    nodes: &toml::Value,
    origin: &str,
    l: &mut Layer,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let version = match version {
        Some(toml::Value::Integer(v)) => int_in_range(
            &format!("{origin}: cluster.version"),
            *v,
            0,
            i64::MAX as u64,
        )?,
        _ => 1,
    };
    let nodes = nodes
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|n| {
            Node::parse(n.as_str().unwrap_or_default()).map_err(|error| ConfigError::ClusterNode {
                name: name.to_string(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(ConfigError::EmptyNodes(name.to_string()));
    }
    for node in nodes.iter().filter(|node| node.ip.is_empty()) {
        l.warn(format!(
            "{name}: '{}' has no IP address: clients that connect by address \
             (pymemcache's, by default) cannot use it; write host|ip|port",
            node.host
        ));
    }
    Ok(Some(ClusterConfig { version, nodes }))
}
