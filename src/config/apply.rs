//! One value into a [`Layer`]: parsed by the kind its row states, whichever source gave it
//! (the command line, `-o`, the config file). The readers call [`apply`]; it names no
//! setting.

use super::error::ConfigError;
use super::listen::Listener;
use super::schema::{Kind, Value};
use super::table::{Entry, Layer};
use super::value::{
    Input, int_in_range, mask_value, parse_admin_listen, parse_num, parse_octal_mask, parse_path,
    parse_size, parse_switch, size_value, text_value,
};

impl Layer {
    pub(super) fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// Parses `input` by `entry`'s kind and puts the value into `l`; `name` says where it
/// came from (`-p`, `-o shard_queue`, `tessera.toml: port`).
pub(super) fn apply(
    entry: &Entry,
    name: &str,
    input: Input<'_>,
    l: &mut Layer,
) -> Result<(), ConfigError> {
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
        (Kind::OnOff, Input::Text(v)) => Value::Bool(parse_switch(name, v)?),
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
