//! The close check itself ([`read_to_eof`] and [`expect_eof`], which every "closed"
//! assertion of the suite goes through): it must fail against a server that keeps the
//! connection open, with or without having sent something, and pass against one that
//! closes, cleanly or with a reset.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A client of a [`fake_server`] that has sent its request; short read timeouts keep the
/// failing cases quick.
fn client_of(reply: &'static [u8], end: PeerEnd) -> (TcpStream, std::thread::JoinHandle<()>) {
    let (port, server) = fake_server(reply, end);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the fake server");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(b"get k\r\n").unwrap();
    (s, server)
}

#[test]
fn a_connection_kept_open_fails_the_close_check() {
    for reply in [&b""[..], b"END\r\n"] {
        let (mut s, server) = client_of(reply, PeerEnd::KeepOpen);
        let err = read_to_eof(&mut s).expect_err("a connection kept open passed as closed");
        assert!(
            err.contains("kept the connection open"),
            "unclear message: {err}"
        );
        assert!(
            err.contains(&format!("{:?}", String::from_utf8_lossy(reply))),
            "the message should show what arrived: {err}"
        );
        drop(s);
        server.join().unwrap();
    }
}

#[test]
fn a_connection_kept_open_panics_expect_eof() {
    let (mut s, server) = client_of(b"ERROR\r\n", PeerEnd::KeepOpen);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        expect_eof(&mut s, "after ERROR")
    }));
    let msg = panicked.expect_err("expect_eof passed on a connection kept open");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.starts_with("after ERROR: the server kept the connection open"),
        "{msg}"
    );
    drop(s);
    server.join().unwrap();
}

#[test]
fn a_closed_connection_passes_with_what_came_before() {
    for reply in [&b""[..], b"SERVER_ERROR object too large for cache\r\n"] {
        let (mut s, server) = client_of(reply, PeerEnd::Close);
        assert_eq!(read_to_eof(&mut s).unwrap(), reply);
        assert_eq!(expect_eof(&mut s, "again"), b"", "EOF stays EOF");
        server.join().unwrap();
    }
}

/// A server that closes with the request unread resets the connection: still a close,
/// and the reply written before it is still read.
#[test]
fn a_reset_after_the_reply_is_a_close() {
    let (mut s, server) = client_of(b"CLIENT_ERROR line too long\r\n", PeerEnd::CloseUnread);
    server.join().unwrap();
    assert_eq!(
        read_to_eof(&mut s).unwrap(),
        b"CLIENT_ERROR line too long\r\n"
    );
}
