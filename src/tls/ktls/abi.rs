//! The kernel's kTLS interface numbers (linux/tls.h, linux/tcp.h) and the TLS record types
//! they carry. A leaf.

/// The kernel's kTLS interface (linux/tls.h, linux/tcp.h).
pub(super) const SOL_TLS: libc::c_int = 282;
pub(super) const TCP_ULP: libc::c_int = 31;
pub(super) const TLS_TX: libc::c_int = 1;
pub(super) const TLS_RX: libc::c_int = 2;
pub(super) const TLS_SET_RECORD_TYPE: libc::c_int = 1;
pub(super) const TLS_GET_RECORD_TYPE: libc::c_int = 2;

/// TLS record content types.
pub(super) const CT_ALERT: u8 = 21;
pub(super) const CT_HANDSHAKE: u8 = 22;
pub(super) const CT_APPLICATION_DATA: u8 = 23;
