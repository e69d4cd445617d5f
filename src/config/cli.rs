//! The command line, read the way memcached's `getopt_long` reads it: short flags take
//! their value attached (`-p11211`) or as the next argument (`-p 11211`), flags without a
//! value can be grouped (`-vv`, `-Mv`, `-Mp11211`), long flags take `--port=11211` or
//! `--port 11211`, and a long flag may be abbreviated to any unambiguous prefix
//! (`--mem=64`).
//!
//! Which flags exist, and what each does with its value, is the settings table's.

use std::path::PathBuf;

use super::apply::apply;
use super::error::ConfigError;
use super::schema::{Arg, Flag, Kind};
use super::table::{Config, Layer};
use super::table::{Entry, TABLE};
use super::value::parse_path;
use super::{extended, help};

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this text (help, version, license) to stdout as is — it ends with a
    /// newline — and exit 0.
    Print(String),
}

/// The command line being parsed.
#[derive(Default)]
struct CliState {
    layer: Layer,
    config_file: Option<PathBuf>,
    /// Whether `-l` was already given on the command line (later ones append).
    listen_seen: bool,
}

/// What the command line asked for, before the file is read: the flags' layer and the
/// `--config` file, or something to print.
pub(super) enum Parsed {
    /// Run with these settings over the file's.
    Run(Box<Layer>, Option<PathBuf>),
    /// `-h`, `-V`, `-i`.
    Print(Command),
}

/// The flags of the table, each with its row.
fn flags() -> impl Iterator<Item = (&'static Entry, &'static Flag)> {
    TABLE
        .iter()
        .filter_map(|e| e.row.flag.as_ref().map(|f| (e, f)))
}

fn find_short(c: char) -> Option<(&'static Entry, &'static Flag)> {
    flags().find(|(_, f)| f.short == Some(c))
}

/// Exact long name, else an unambiguous prefix of one (as `getopt_long` allows).
fn find_long(name: &str) -> Result<(&'static Entry, &'static Flag), ConfigError> {
    let names = |f: &Flag| [f.long, f.alias].into_iter().flatten();
    if let Some(hit) = flags().find(|(_, f)| names(f).any(|l| l == name)) {
        return Ok(hit);
    }
    let hits: Vec<_> = if name.is_empty() {
        Vec::new()
    } else {
        flags()
            .filter(|(_, f)| names(f).any(|l| l.starts_with(name)))
            .collect()
    };
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(ConfigError::UnknownOption(format!("--{name}"))),
        many => Err(ConfigError::Ambiguous {
            prefix: name.to_string(),
            candidates: many.iter().filter_map(|(_, f)| f.long).collect(),
        }),
    }
}

fn missing_value(f: &Flag) -> ConfigError {
    ConfigError::MissingValue {
        short: f.short,
        long: f.long,
    }
}

/// Parses the command line (without argv\[0\]).
///
/// `-h`, `-V` and `-i` end parsing as soon as they are reached (errors in earlier
/// arguments win, later arguments are not looked at), like memcached.
pub(super) fn parse(args: &[String]) -> Result<Parsed, ConfigError> {
    let mut st = CliState::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            if let Some(extra) = args.get(i) {
                return Err(ConfigError::Unexpected(extra.clone()));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let (entry, f) = find_long(name)?;
            let value = match f.arg {
                Arg::None => {
                    if inline.is_some() {
                        return Err(ConfigError::TakesNoValue(f.long.unwrap_or("")));
                    }
                    None
                }
                Arg::Optional => inline,
                Arg::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).ok_or_else(|| missing_value(f))?;
                        i += 1;
                        Some(v.as_str())
                    }
                },
            };
            if let Some(cmd) = handle(entry, f, value, &mut st)? {
                return Ok(Parsed::Print(cmd));
            }
        } else if let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) {
            for (pos, c) in group.char_indices() {
                let (entry, f) =
                    find_short(c).ok_or_else(|| ConfigError::UnknownOption(format!("-{c}")))?;
                if f.arg == Arg::Required {
                    // A value-taking flag swallows the rest of the group as its value.
                    let rest = &group[pos + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args.get(i).ok_or_else(|| missing_value(f))?;
                        i += 1;
                        v.as_str()
                    } else {
                        rest
                    };
                    if let Some(cmd) = handle(entry, f, Some(value), &mut st)? {
                        return Ok(Parsed::Print(cmd));
                    }
                    break;
                }
                if let Some(cmd) = handle(entry, f, None, &mut st)? {
                    return Ok(Parsed::Print(cmd));
                }
            }
        } else {
            return Err(ConfigError::Unexpected(arg.to_string()));
        }
    }
    Ok(Parsed::Run(Box::new(st.layer), st.config_file))
}

/// Applies one flag. Returns a command when the flag ends parsing (`-h`, `-V`, `-i`).
fn handle(
    entry: &'static Entry,
    f: &Flag,
    value: Option<&str>,
    st: &mut CliState,
) -> Result<Option<Command>, ConfigError> {
    let name = f.display_name();
    let l = &mut st.layer;
    match entry.row.kind {
        Kind::Help => return Ok(Some(Command::Print(help::help_text()))),
        Kind::License => return Ok(Some(Command::Print(help::license_text()))),
        Kind::Version => return Ok(Some(Command::Print(help::version_text()))),
        Kind::ConfigFile => {
            if st.config_file.is_some() {
                return Err(ConfigError::ConfigTwice);
            }
            st.config_file = Some(parse_path(&name, value.unwrap_or(""))?);
        }
        Kind::Extended => extended::parse(value.unwrap_or(""), l)?,
        Kind::Verbose if value.is_none() => {
            l.verbose = Some(l.verbose.unwrap_or(0).saturating_add(1));
        }
        Kind::Listen => {
            // The first -l replaces the file's or default list; later ones add to it.
            let before = match (st.listen_seen, l.listen.take()) {
                (true, Some(list)) => list,
                _ => Vec::new(),
            };
            apply(entry, &name, super::value::Input::Text(value), l)?;
            if let Some(list) = l.listen.as_mut() {
                list.splice(0..0, before);
            }
            st.listen_seen = true;
        }
        _ => apply(entry, &name, super::value::Input::Text(value), l)?,
    }
    Ok(None)
}
