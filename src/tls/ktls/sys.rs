//! The system calls of kTLS: the socket options that install the ULP and the keys, and
//! `sendmsg`/`recvmsg` with the record-type control message. The only kTLS code with
//! `unsafe`, each block with its `// Safety:` note.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use rustls::{ConnectionTrafficSecrets, ProtocolVersion};

use super::abi::{
    CT_APPLICATION_DATA, SOL_TLS, TCP_ULP, TLS_GET_RECORD_TYPE, TLS_SET_RECORD_TYPE, TLS_TX,
};
use super::keys::CryptoInfo;

pub(super) fn set_ulp(fd: RawFd) -> io::Result<()> {
    let name = b"tls\0";
    // Safety: `name` is a live 4-byte buffer for the duration of the call and its length is
    // passed with it; the kernel only reads it. A bad `fd` is reported as EBADF.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(super) fn set_crypto(fd: RawFd, direction: libc::c_int, info: &CryptoInfo) -> io::Result<()> {
    // Safety: `info.0` is a live byte buffer laid out as the kernel's crypto_info structure
    // for its cipher (see `CryptoInfo::build`), with its exact length passed; the kernel only
    // reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_TLS,
            direction,
            info.0.as_ptr().cast(),
            info.0.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads (and so resets) the socket's pending error.
pub(super) fn clear_socket_error(fd: RawFd) {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // Safety: `err` and `len` are live locals of the sizes passed; the kernel writes at most
    // `len` bytes into `err`.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        );
    }
}

/// Room for one control message carrying one byte (the record type), aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// Sends one record of content type `typ` (not application data) through the kernel.
pub(super) fn send_record(fd: RawFd, typ: u8, payload: &[u8]) -> io::Result<()> {
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // Safety: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // Safety: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as _;
    // Safety: msg_control points at `cbuf`, which is aligned for cmsghdr and at least
    // CMSG_SPACE(1) bytes long, so CMSG_FIRSTHDR is non-null and the header and its one data
    // byte lie inside `cbuf`. `iov` and `payload` outlive the sendmsg call, which only reads
    // them.
    let r = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = SOL_TLS;
        (*cmsg).cmsg_type = TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(cmsg) = typ;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    match r {
        n if n >= 0 && n as usize == payload.len() => Ok(()),
        n if n >= 0 => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "kTLS: a control record was cut short",
        )),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Reads the next record with its content type (after `recv` failed with EIO, the next
/// record is not application data). Returns (type, bytes).
pub(super) fn recv_record(fd: RawFd, buf: &mut [u8]) -> io::Result<(u8, usize)> {
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Safety: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // Safety: `iov` describes `buf`, writable for its whole length, and msg_control points
    // at `cbuf` with its true length; both outlive the call. The kernel writes at most that
    // much into each.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut typ = CT_APPLICATION_DATA;
    // Safety: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/CMSG_NXTHDR only
    // return headers inside that range (or null), and a TLS_GET_RECORD_TYPE message carries
    // at least one data byte.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == SOL_TLS && (*cmsg).cmsg_type == TLS_GET_RECORD_TYPE {
                typ = *libc::CMSG_DATA(cmsg);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((typ, n as usize))
}

/// Moves the transmit direction of a connected socket into the kernel with these secrets.
/// For client-side tools (the kTLS VM check uses it to send records rustls would not).
pub fn install_tx(
    fd: RawFd,
    version: ProtocolVersion,
    seq: u64,
    secrets: &ConnectionTrafficSecrets,
) -> io::Result<()> {
    set_ulp(fd)?;
    set_crypto(
        fd,
        TLS_TX,
        &CryptoInfo::from_secrets(version, seq, secrets)?,
    )
}

/// Sends one record of content type `typ` on a socket whose TX is in the kernel (see
/// [`install_tx`]): an alert is type 21, payload `[level, description]`.
pub fn send_control(fd: RawFd, typ: u8, payload: &[u8]) -> io::Result<()> {
    send_record(fd, typ, payload)
}
