//! ElastiCache-style auto discovery: the node list `config get cluster` answers.
//!
//! The list comes from the config file's `[cluster]` table and can be replaced at run time
//! with `config set cluster` (when `-o cluster_config_set` allows it). The wire format is
//! ElastiCache's:
//!
//! ```text
//! config get cluster
//! CONFIG cluster 0 <bytes>\r\n
//! <version>\n
//! <host>|<ip>|<port> <host>|<ip>|<port> ...\n
//! \r\n
//! END\r\n
//! ```
//!
//! `<bytes>` counts the two `\n`-terminated lines. Clients poll it and rebuild their
//! consistent-hash ring when the version goes up, so every change must raise it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// One cache node as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Host name (clients that use names connect to it).
    pub host: String,
    /// IP address, or empty (clients that use addresses connect to it).
    pub ip: String,
    /// TCP port.
    pub port: u16,
}

/// A versioned node list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Raised on every change; clients ignore a list whose version did not go up.
    pub version: u64,
    /// The nodes, in the order clients are told.
    pub nodes: Vec<Node>,
}

/// The largest `config set cluster` payload accepted (about 3,000 nodes).
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// Why a node (`host|ip|port` or `host:port`) does not parse. Its `Display` quotes the input,
/// as the config file check and `config set cluster` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError {
    /// The node as written.
    pub input: String,
    /// What is wrong with it.
    pub kind: NodeErrorKind,
}

/// What is wrong with a node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeErrorKind {
    /// Has `|` but not exactly three fields.
    NotThreeFields,
    /// Neither `|` nor `:`.
    NoSeparator,
    /// The host field is empty.
    EmptyHost,
    /// The host holds a space, a control character or `|`.
    BadHostChar(char),
    /// The ip field is not an IP address.
    BadIp(String),
    /// The port is not 1 to 65535.
    BadPort,
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.input;
        match &self.kind {
            NodeErrorKind::NotThreeFields => write!(f, "'{s}': expected host|ip|port"),
            NodeErrorKind::NoSeparator => write!(f, "'{s}': expected host|ip|port or host:port"),
            NodeErrorKind::EmptyHost => write!(f, "'{s}': the host is empty"),
            NodeErrorKind::BadHostChar(c) => write!(f, "'{s}': the host has the character {c:?}"),
            NodeErrorKind::BadIp(ip) => write!(f, "'{s}': '{ip}' is not an IP address"),
            NodeErrorKind::BadPort => write!(f, "'{s}': the port must be 1 to 65535"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why a `config set cluster` data block does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not UTF-8.
    NotUtf8,
    /// No version line.
    Empty,
    /// The version line is not a number.
    BadVersion(String),
    /// No node line after the version.
    NoNodes,
    /// A third line.
    ExtraLine(String),
    /// A node does not parse.
    Node(NodeError),
    /// The node line holds no node.
    EmptyList,
    /// A thread panicked holding the cluster state.
    Poisoned,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::NotUtf8 => f.write_str("the data is not UTF-8"),
            PayloadError::Empty => {
                f.write_str("the data is empty: expected '<version>\\n<host>|<ip>|<port> ...'")
            }
            PayloadError::BadVersion(v) => write!(f, "'{v}' is not a version number"),
            PayloadError::NoNodes => f.write_str("no node list after the version line"),
            PayloadError::ExtraLine(l) => write!(
                f,
                "unexpected line '{l}': the nodes go on one line, separated by spaces"
            ),
            PayloadError::Node(e) => e.fmt(f),
            PayloadError::EmptyList => f.write_str("the node list is empty"),
            PayloadError::Poisoned => f.write_str("cluster state is poisoned"),
        }
    }
}

impl std::error::Error for PayloadError {}

impl Node {
    /// Parses `host|ip|port` (ElastiCache's form) or `host:port` / `[v6]:port`. In the
    /// second form an IP literal fills both fields; a host name leaves `ip` empty.
    pub fn parse(s: &str) -> Result<Node, NodeError> {
        let fail = |kind| NodeError {
            input: s.to_string(),
            kind,
        };
        let (host, ip, port) = if s.contains('|') {
            let parts: Vec<&str> = s.split('|').collect();
            let [host, ip, port] = parts[..] else {
                return Err(fail(NodeErrorKind::NotThreeFields));
            };
            (host.to_string(), ip.to_string(), port)
        } else {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| fail(NodeErrorKind::NoSeparator))?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let ip = if host.parse::<IpAddr>().is_ok() {
                host.to_string()
            } else {
                String::new()
            };
            (host.to_string(), ip, port)
        };
        if host.is_empty() {
            return Err(fail(NodeErrorKind::EmptyHost));
        }
        if let Some(c) = host
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '|')
        {
            return Err(fail(NodeErrorKind::BadHostChar(c)));
        }
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
            return Err(fail(NodeErrorKind::BadIp(ip)));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail(NodeErrorKind::BadPort))?;
        Ok(Node { host, ip, port })
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}|{}", self.host, self.ip, self.port)
    }
}

impl ClusterConfig {
    /// The data block of `config get cluster`: the version line and the node line.
    pub fn payload(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(Node::to_string).collect();
        format!("{}\n{}\n", self.version, nodes.join(" "))
    }

    /// The whole `config get cluster` reply.
    pub fn reply(&self) -> Vec<u8> {
        let payload = self.payload();
        format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len()).into_bytes()
    }

    /// Parses a `config set cluster` data block: what `payload` produces (the version
    /// line, then the nodes separated by spaces); line ends may be `\n` or `\r\n`.
    pub fn parse_payload(data: &[u8]) -> Result<ClusterConfig, PayloadError> {
        let text = std::str::from_utf8(data).map_err(|_| PayloadError::NotUtf8)?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let version = lines.next().ok_or(PayloadError::Empty)?;
        let version: u64 = version
            .parse()
            .map_err(|_| PayloadError::BadVersion(version.to_string()))?;
        let node_line = lines.next().ok_or(PayloadError::NoNodes)?;
        if let Some(extra) = lines.next() {
            return Err(PayloadError::ExtraLine(extra.to_string()));
        }
        let nodes = node_line
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(Node::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(PayloadError::Node)?;
        Ok(ClusterConfig { version, nodes })
    }
}

/// Why a `config set cluster` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    /// The payload does not parse.
    Invalid(PayloadError),
    /// The version did not go up.
    Stale {
        /// The version given.
        given: u64,
        /// The version held.
        current: u64,
    },
}

/// The process's node list, shared by all executors. Read when a client asks (clients
/// poll about once a minute), so a mutex is enough.
#[derive(Debug, Default)]
pub struct ClusterState {
    current: Mutex<Option<Arc<ClusterConfig>>>,
}

impl ClusterState {
    /// State holding `initial` (from the config file), if any.
    pub fn new(initial: Option<ClusterConfig>) -> Self {
        ClusterState {
            current: Mutex::new(initial.map(Arc::new)),
        }
    }

    /// The current list, if one is set.
    pub fn get(&self) -> Option<Arc<ClusterConfig>> {
        self.current.lock().ok().and_then(|g| g.clone())
    }

    /// Replaces the list with a parsed payload whose version is above the current one.
    pub fn set(&self, data: &[u8]) -> Result<Arc<ClusterConfig>, SetError> {
        let new = ClusterConfig::parse_payload(data).map_err(SetError::Invalid)?;
        self.install(new)
    }

    /// Takes the list a config file holds now (SIGHUP): `Ok(None)` if it is the list
    /// already held; else as [`ClusterState::set`].
    pub fn reload(&self, new: ClusterConfig) -> Result<Option<Arc<ClusterConfig>>, SetError> {
        if self.get().is_some_and(|cur| *cur == new) {
            return Ok(None);
        }
        self.install(new).map(Some)
    }

    fn install(&self, new: ClusterConfig) -> Result<Arc<ClusterConfig>, SetError> {
        if new.nodes.is_empty() {
            return Err(SetError::Invalid(PayloadError::EmptyList));
        }
        let mut guard = self
            .current
            .lock()
            .map_err(|_| SetError::Invalid(PayloadError::Poisoned))?;
        if let Some(cur) = guard.as_ref()
            && new.version <= cur.version
        {
            return Err(SetError::Stale {
                given: new.version,
                current: cur.version,
            });
        }
        let new = Arc::new(new);
        *guard = Some(new.clone());
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, ip: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            ip: ip.into(),
            port,
        }
    }

    #[test]
    fn nodes_parse_in_both_forms() {
        assert_eq!(
            Node::parse("cache1.example.com|10.0.0.1|11211"),
            Ok(node("cache1.example.com", "10.0.0.1", 11211))
        );
        assert_eq!(
            Node::parse("10.0.0.2:11212"),
            Ok(node("10.0.0.2", "10.0.0.2", 11212))
        );
        assert_eq!(Node::parse("[::1]:11211"), Ok(node("::1", "::1", 11211)));
        assert_eq!(
            Node::parse("cache3.example.com:11211"),
            Ok(node("cache3.example.com", "", 11211))
        );
        assert_eq!(Node::parse("h||1"), Ok(node("h", "", 1)));
        for bad in [
            "",
            "host",
            "h|1.2.3.4",
            "h|1.2.3.4|0",
            "h|1.2.3.4|65536",
            "h|not-an-ip|11211",
            "|1.2.3.4|11211",
            "h|1.2.3.4|11211|x",
            ":11211",
            "h:port",
        ] {
            assert!(Node::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn reply_counts_the_two_lines() {
        let c = ClusterConfig {
            version: 12,
            nodes: vec![
                node("a.example.com", "10.82.235.120", 11211),
                node("b.example.com", "10.80.249.27", 11212),
            ],
        };
        let payload = "12\na.example.com|10.82.235.120|11211 b.example.com|10.80.249.27|11212\n";
        assert_eq!(c.payload(), payload);
        assert_eq!(
            c.reply(),
            format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len()).into_bytes()
        );
        // What get prints, set takes back.
        assert_eq!(ClusterConfig::parse_payload(payload.as_bytes()), Ok(c));
    }

    #[test]
    fn payloads_are_checked() {
        let ok = ClusterConfig::parse_payload(b"3\r\nh|1.2.3.4|1  h2|1.2.3.5|2\r\n").unwrap();
        assert_eq!(ok.version, 3);
        assert_eq!(ok.nodes.len(), 2);
        for bad in [
            &b""[..],
            b"\n\n",
            b"x\nh|1.2.3.4|1\n",
            b"-1\nh|1.2.3.4|1\n",
            b"1\n",
            b"1\nh|1.2.3.4|1\nh2|1.2.3.4|2\n",
            b"1\nh|1.2.3.4|99999\n",
            b"1\n\xff|1.2.3.4|1\n",
        ] {
            assert!(ClusterConfig::parse_payload(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn set_needs_a_higher_version_and_nodes() {
        let s = ClusterState::new(None);
        assert!(s.get().is_none());
        assert_eq!(s.set(b"5\nh|1.2.3.4|1\n").unwrap().version, 5);
        assert_eq!(
            s.set(b"5\nh|1.2.3.4|2\n"),
            Err(SetError::Stale {
                given: 5,
                current: 5
            })
        );
        assert!(matches!(s.set(b"6\n \n"), Err(SetError::Invalid(_))));
        assert_eq!(s.set(b"6\nh|1.2.3.4|2\n").unwrap().nodes[0].port, 2);
        assert_eq!(s.get().unwrap().version, 6);
        // A reload of the same list changes nothing; a new one needs a higher version.
        let same = (*s.get().unwrap()).clone();
        assert_eq!(s.reload(same.clone()), Ok(None));
        let moved = ClusterConfig {
            nodes: vec![node("h", "1.2.3.4", 3)],
            ..same
        };
        assert!(matches!(
            s.reload(moved.clone()),
            Err(SetError::Stale { given: 6, .. })
        ));
        let next = ClusterConfig {
            version: 7,
            ..moved
        };
        assert_eq!(s.reload(next).unwrap().unwrap().version, 7);
    }
}
