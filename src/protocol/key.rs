//! Keys: made only by the front ends, so every [`Key`] past the parser is valid.
//!
//! memcached's rule for a text key is 1 to 250 bytes without spaces or control characters;
//! a binary-safe front end (a base64 meta key, the binary protocol) allows any bytes but
//! keeps the length. Checking once, here, is what lets the commands, the shards and the
//! store take a key without checking it again.

/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;

/// Why a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Empty or over 250 bytes.
    Length,
    /// Contains a control character (protocol.txt forbids them).
    Control,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyError::Length => "key is empty or longer than 250 bytes",
            KeyError::Control => "key contains a control character",
        })
    }
}

impl std::error::Error for KeyError {}

/// A valid key, held as `B`: borrowed (`&[u8]`, from the read buffer) while a command is
/// served where it was parsed, owned (`Vec<u8>`) when it crosses to the owning executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<B>(B);

/// A key borrowed from the read buffer.
pub type KeyRef<'a> = Key<&'a [u8]>;

impl<'a> Key<&'a [u8]> {
    /// Checks a text key: 1..=250 bytes, no control characters (spaces cannot occur: they
    /// split tokens).
    #[inline]
    pub fn parse(key: &'a [u8]) -> Result<Self, KeyError> {
        if key.is_empty() || key.len() > KEY_MAX_LENGTH {
            return Err(KeyError::Length);
        }
        if key.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(KeyError::Control);
        }
        Ok(Key(key))
    }

    /// A key the front end has already checked (a decoded binary key, or one of a get's
    /// keys, checked when the line was parsed).
    pub(super) fn checked(key: &'a [u8]) -> Self {
        debug_assert!(!key.is_empty() && key.len() <= KEY_MAX_LENGTH);
        Key(key)
    }

    /// The bytes, for as long as the buffer they are in.
    pub fn bytes(self) -> &'a [u8] {
        self.0
    }
}

impl<B: AsRef<[u8]>> Key<B> {
    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// An owned copy, to send to another executor.
    pub fn to_owned(&self) -> Key<Vec<u8>> {
        Key(self.0.as_ref().to_vec())
    }
}

/// The keys of a get-family command: the rest of the line, split on spaces, every key
/// checked when the line was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyList<'a>(&'a [u8]);

impl<'a> KeyList<'a> {
    /// Checks every key of `rest` (space separated).
    #[inline] // a get's keys: checked inside the front end's dispatch, as before the split
    pub fn parse(rest: &'a [u8]) -> Result<Self, KeyError> {
        let list = KeyList(rest);
        for k in list.raw() {
            Key::parse(k)?;
        }
        Ok(list)
    }

    fn raw(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }

    /// The keys in order (duplicates kept, as memcached answers each).
    pub fn iter(&self) -> impl Iterator<Item = KeyRef<'a>> + 'a {
        self.raw().map(Key::checked)
    }
}
