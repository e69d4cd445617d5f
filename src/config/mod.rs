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
//!
//! Modules, bottom up (each names only those above it in this list): `units` (sizes and
//! caps), `error`, `value` (one value by kind), `listen` and `tls` (typed listener and TLS
//! settings), `schema` (what a row says, the table macro), `table` (the rows: `Config`,
//! `Layer`, `TABLE`), `apply` (a value into a layer), the readers `extended`, `help`,
//! `cli`, `file`, then `build` (defaults < file < command line, validated) and `resolve`
//! (listeners and TLS settings a `Config` yields at startup). This file only declares them
//! and re-exports the public face.

mod apply;
mod build;
mod cli;
mod error;
mod extended;
mod file;
mod help;
mod listen;
mod resolve;
mod schema;
mod table;
mod tls;
mod units;
mod value;

#[cfg(test)]
mod tests;

pub use build::{parse_args, read_cluster};
pub use cli::Command;
pub use error::{ConfigError, ListenError, Range, TlsError};
pub use listen::{Host, ListenMode, Listener};
pub use schema::{Live, Shows, Stat};
pub use table::Config;
pub use tls::{Ciphers, KtlsMode, MinVersion, TlsSettings, VerifyMode, select_suites};
