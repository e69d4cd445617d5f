//! Protocol front ends: bytes → commands, and the reply encoding commands share.
//!
//! A front end parses a request straight out of the connection's read buffer into a
//! [`crate::cmd::Command`] that borrows from it. Besides a command, parsing has three
//! outcomes ([`Parsed`]): wait for more bytes, an error line (memcached's exact text), or
//! hang up — never a panic. The front ends are [`text`] (memcached's classic commands, and
//! the `m*` lines it hands to [`meta`]); a binary front end would be a third module beside
//! them, producing the same commands.
//!
//! Keys are made only here ([`Key`]), so a key past the parser is known to be valid.

pub mod base64;
pub mod key;
pub mod line;
pub mod meta;
pub mod num;
pub mod parsed;
pub mod reply;
pub mod text;

pub use key::{KEY_MAX_LENGTH, Key, KeyError, KeyList, KeyRef};
pub use line::Line;
pub use parsed::{Limits, Parsed};
pub use reply::Reply;
