//! `-h`, `-V` and `-i`: the help is the table, rendered memcached's way (flag, then its
//! description at column 27, continuation lines under it), with `--config` first and the
//! `-o` keys after the flags.

use super::extended::{IGNORED_EXT, UNSUPPORTED_EXT};
use super::schema::Kind;
use super::table::{Entry, TABLE, default_value};

/// tessera's version, as `-V` prints it.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The memcached release whose flags and protocol tessera follows.
const MEMCACHED_COMPAT: &str = "1.6.18";
/// Where descriptions start.
const COLUMN: usize = 26;
/// The width the list of ignored `-o` keys is wrapped to.
const WRAP: usize = 76;

pub(super) fn version_text() -> String {
    format!("tessera {VERSION}\n")
}

pub(super) fn license_text() -> String {
    format!(
        "tessera {VERSION}: Copyright the tessera authors. Licensed under the Apache License, \
         Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).\n"
    )
}

/// A row's help lines with `{default}` and `{max}` filled in.
fn lines(e: &Entry) -> impl Iterator<Item = String> + '_ {
    let default = default_value(e)
        .map(|v| v.help(e.row.kind))
        .unwrap_or_default();
    let max = match e.row.kind {
        Kind::Num(_, hi) | Kind::Size(_, hi) => hi.to_string(),
        _ => String::new(),
    };
    e.row
        .help
        .iter()
        .map(move |l| l.replace("{default}", &default).replace("{max}", &max))
}

/// Writes `head` and the row's description beside it.
fn item(out: &mut String, head: &str, e: &Entry) {
    for (i, line) in lines(e).enumerate() {
        if i == 0 {
            out.push_str(head);
            let pad = COLUMN.saturating_sub(head.len()).max(1);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if !line.starts_with('-') {
            out.extend(std::iter::repeat_n(' ', COLUMN));
        }
        out.push_str(&line);
        out.push('\n');
    }
}

fn flag_head(e: &Entry) -> Option<String> {
    let f = e.row.flag?;
    let long = f.long.map(|l| format!("--{l}{}", f.metavar));
    Some(match (f.short, long) {
        (Some(c), Some(l)) => format!("-{c}, {l}"),
        (Some(c), None) => format!("-{c}{}", f.metavar),
        (None, Some(l)) => l,
        (None, None) => return None,
    })
}

/// memcached-style `-h` output: usage line, then every flag with its long form,
/// description and default. Flags accepted only for compatibility say "(ignored)".
pub(super) fn help_text() -> String {
    let mut out = format!(
        "tessera {VERSION} (memcached {MEMCACHED_COMPAT} compatible)\nUsage: tessera [options]\n"
    );
    let is = |kind: fn(&Kind) -> bool| move |e: &&Entry| kind(&e.row.kind);
    let first = TABLE.iter().filter(is(|k| matches!(k, Kind::ConfigFile)));
    let middle = TABLE
        .iter()
        .filter(is(|k| !matches!(k, Kind::ConfigFile | Kind::Extended)));
    let last = TABLE.iter().filter(is(|k| matches!(k, Kind::Extended)));
    for e in first.chain(middle).chain(last) {
        if let Some(head) = flag_head(e) {
            item(&mut out, &head, e);
        }
    }
    for e in TABLE.iter() {
        if let Some(key) = e.row.ext {
            item(&mut out, &format!("   - {key}:"), e);
        }
    }
    let mut line = String::from("   accepted and ignored, with a warning:");
    let ignored = IGNORED_EXT.iter().map(|(k, _, _)| *k);
    let words: Vec<String> = ignored
        .map(|k| format!("{k},"))
        .chain(
            "(and the no_ forms of the switches)"
                .split(' ')
                .map(String::from),
        )
        .collect();
    let n = IGNORED_EXT.len();
    for (i, w) in words.iter().enumerate() {
        // The last key ends the list: no comma after it.
        let w = if i + 1 == n {
            w.trim_end_matches(',')
        } else {
            w
        };
        if line.len() + 1 + w.len() > WRAP {
            out.push_str(&line);
            out.push('\n');
            line = format!("     {w}");
        } else {
            line.push(' ');
            line.push_str(w);
        }
    }
    out.push_str(&line);
    out.push('\n');
    let unsupported: Vec<String> = UNSUPPORTED_EXT
        .iter()
        .map(|(prefix, _, what)| format!("{prefix}* ({what})"))
        .collect();
    out.push_str(&format!("   not supported: {}\n", unsupported.join(", ")));
    out
}
