//! Kernel TLS (kTLS): after rustls finishes a handshake, the record layer moves into the
//! kernel, so replies are encrypted by `send` and requests decrypted by `recv` with no copy
//! through userspace buffers.
//!
//! The switch ([`KtlsStream::switch`]) happens only at a record boundary: the handshake code
//! reads exactly to the end of any partial record, decrypts everything it has, flushes what
//! rustls queued (tickets), and only then hands the traffic secrets to the kernel with
//! `TCP_ULP "tls"` + `TLS_TX` / `TLS_RX`. rustls keeps a [`KernelConnection`] to derive new
//! secrets on a TLS 1.3 KeyUpdate.
//!
//! After the switch, records that are not application data make `recv` fail with EIO; they
//! are read with `recvmsg` and the record-type control message: close_notify is answered,
//! other alerts close the connection, a KeyUpdate rekeys RX (and TX when asked) on kernels
//! that can (6.14+) and closes cleanly on the others. The records this side sends are
//! counted against the cipher suite's confidentiality limit: near it a TLS 1.3 connection is
//! rekeyed where the kernel can, anything else is closed with close_notify first.
//!
//! Read top-down: `probe.rs` holds what the kernel offers ([`probe`], [`KernelSupport`]) and
//! why a connection stays in rustls ([`Declined`]); `abi.rs` and `cipher.rs` are the kernel's
//! numbers, versions and ciphers (leaves); `keys.rs` lays out the secrets as the kernel's
//! structures; `stream.rs` is a connection after the switch ([`KtlsStream`]); `sys.rs` is the
//! only module with `unsafe` for kTLS: the socket options and the `sendmsg`/`recvmsg` calls
//! with control messages, each block with its `// Safety:` note.

mod abi;
mod cipher;
mod keys;
mod probe;
mod stream;
mod sys;
#[cfg(test)]
mod tests;

pub use cipher::Cipher;
pub(crate) use probe::kernel_release;
pub use probe::{Declined, KernelSupport, SwitchError, path_label, probe};
pub use stream::{KtlsStream, ReadTarget};
pub use sys::{install_tx, send_control};

/// `ssl_kernel_tls`, parsed with the other TLS settings in `config`.
pub use crate::config::KtlsMode;
