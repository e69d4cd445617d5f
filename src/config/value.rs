//! Values as the command line and `-o` give them (text) and as the config file gives them
//! (TOML values), each parsed by the kind of setting it is for.
//!
//! Numbers are checked strictly, unlike memcached's `atoi`: `-p abc` is an error, not port 0.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::error::{ConfigError, Range};
use super::units::{GIB, KIB, MIB, fmt_size};

/// A value as one source gives it: text from the command line or `-o` (`None`: the option
/// was given bare), or a value from the config file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Input<'a> {
    /// Command line or `-o`.
    Text(Option<&'a str>),
    /// Config file.
    Toml(&'a toml::Value),
}

fn out_of_range(name: &str, shown: &str, range: Range) -> ConfigError {
    ConfigError::OutOfRange {
        name: name.to_string(),
        value: shown.to_string(),
        range,
    }
}

/// A decimal integer in `lo..=hi`, strictly (no sign, no spaces).
pub(super) fn parse_num(name: &str, s: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::NotANumber {
            name: name.to_string(),
            value: s.to_string(),
        });
    }
    let range = || out_of_range(name, s, Range::Num(lo, hi));
    if s.starts_with('-') {
        return Err(range());
    }
    let n: u64 = digits.parse().map_err(|_| range())?;
    if !(lo..=hi).contains(&n) {
        return Err(range());
    }
    Ok(n)
}

/// A config-file integer in `lo..=hi`.
pub(super) fn int_in_range(name: &str, v: i64, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    match u64::try_from(v) {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(out_of_range(name, &v.to_string(), Range::Num(lo, hi))),
    }
}

/// A byte size: decimal digits with an optional `k`, `m` or `g` suffix (any case, powers
/// of 1024), as memcached's `-I` takes it, in `lo..=hi`.
pub(super) fn parse_size(name: &str, s: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], KIB),
        Some(b'm' | b'M') => (&s[..s.len() - 1], MIB),
        Some(b'g' | b'G') => (&s[..s.len() - 1], GIB),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::NotASize {
            name: name.to_string(),
            value: s.to_string(),
        });
    }
    let range = || out_of_range(name, s, Range::Size(lo, hi));
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|d| d.checked_mul(mult))
        .ok_or_else(range)?;
    if !(lo..=hi).contains(&n) {
        return Err(range());
    }
    Ok(n)
}

/// A size from the config file: integer bytes, or a string with a suffix (`"1m"`).
pub(super) fn size_value(
    name: &str,
    v: &toml::Value,
    lo: u64,
    hi: u64,
) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) => {
            let shown = || {
                let n = u64::try_from(*i).map_or_else(|_| i.to_string(), fmt_size);
                out_of_range(name, &n, Range::Size(lo, hi))
            };
            match u64::try_from(*i) {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(shown()),
            }
        }
        toml::Value::String(s) => parse_size(name, s, lo, hi),
        _ => Err(ConfigError::WrongType {
            name: name.to_string(),
            expected: "expected an integer (bytes) or a string like \"1m\"",
        }),
    }
}

/// An octal permission mask (`700`, `0700`).
pub(super) fn parse_octal_mask(name: &str, s: &str) -> Result<u64, ConfigError> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(ConfigError::NotOctal {
            name: name.to_string(),
            value: s.to_string(),
        });
    }
    match u32::from_str_radix(s, 8) {
        Ok(n) if n <= 0o777 => Ok(u64::from(n)),
        Ok(_) => Err(out_of_range(name, s, Range::Octal)),
        // Too many digits for a u32: said in decimal, as memcached's range checks are.
        Err(_) => Err(out_of_range(name, s, Range::Num(0, 0o777))),
    }
}

/// A mask from the config file: an integer (`0o700`) or a string of octal digits.
pub(super) fn mask_value(name: &str, v: &toml::Value) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) => match u32::try_from(*i) {
            Ok(m) if m <= 0o777 => Ok(u64::from(m)),
            _ => Err(out_of_range(name, &i.to_string(), Range::OctalInFile)),
        },
        toml::Value::String(s) => parse_octal_mask(name, s),
        _ => Err(ConfigError::WrongType {
            name: name.to_string(),
            expected: "expected an octal integer (0o700) or string (\"700\")",
        }),
    }
}

/// A path; empty is an error.
pub(super) fn parse_path(name: &str, s: &str) -> Result<PathBuf, ConfigError> {
    if s.is_empty() {
        return Err(ConfigError::EmptyPath(name.to_string()));
    }
    Ok(PathBuf::from(s))
}

/// A switch's value: absent (on), or a boolean word.
pub(super) fn parse_switch(name: &str, val: Option<&str>) -> Result<bool, ConfigError> {
    match val {
        None | Some("true" | "yes" | "on" | "1") => Ok(true),
        Some("false" | "no" | "off" | "0") => Ok(false),
        Some(v) => Err(ConfigError::NotOnOff {
            name: name.to_string(),
            value: v.to_string(),
        }),
    }
}

/// The admin listener: `PORT` (on 127.0.0.1), `IP:PORT` or `[IPv6]:PORT`.
pub(super) fn parse_admin_listen(name: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| ConfigError::BadAdminListen {
            name: name.to_string(),
            value: s.to_string(),
        })
}

/// A config-file value given as a string or an integer, as text.
pub(super) fn text_value(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}
