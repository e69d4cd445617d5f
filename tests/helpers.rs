//! The suite's own checks, shown to fail when what they check is false:
//! - the close check ([`read_to_eof`] and [`expect_eof`], which every "closed" assertion
//!   goes through) fails against a server that keeps the connection open, with or without
//!   having sent something, and passes against one that closes, cleanly or with a reset;
//! - [`ServerProc::wait_bytes_read`] does not count its own `stats` requests;
//! - a heavy test's exclusive slot keeps other servers from starting beside it, without
//!   deadlocking a test that holds two servers.

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

/// Polling `bytes_read` (as the tests do instead of sleeping after a partial request) fails
/// when nothing arrives, however many polls it makes, and passes once the bytes are read.
#[test]
fn wait_bytes_read_counts_only_what_arrives() {
    let server = ServerProc::start(&["-t", "2"]);
    let before = server.stat("bytes_read");
    let waited =
        std::panic::catch_unwind(|| server.wait_bytes_read(before, 1, Duration::from_millis(300)));
    let msg = waited.expect_err("wait_bytes_read passed with nothing sent");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("the server read 0 of 1 bytes"), "{msg}");
    let mut s = server.connect();
    let before = server.stat("bytes_read");
    s.write_all(b"get k").unwrap();
    server.wait_bytes_read(before, 5, Duration::from_secs(10));
}

/// While a heavy test holds the exclusive slot no shared one is given out; a thread that
/// already holds a shared slot gets a second one while an exclusive one waits (a test with
/// two servers), and the exclusive one follows once both are dropped.
#[test]
fn exclusive_slot_excludes_and_does_not_deadlock() {
    use std::sync::{Arc, Mutex};
    let events = Arc::new(Mutex::new(Vec::new()));
    let heavy = exclusive_slot();
    let other = {
        let events = events.clone();
        std::thread::spawn(move || {
            let _slot = shared_slot();
            events.lock().unwrap().push("shared taken");
        })
    };
    // Gives a lock that does not exclude the time to show it; not a wait for state.
    std::thread::sleep(Duration::from_millis(200));
    events.lock().unwrap().push("exclusive dropped");
    drop(heavy);
    other.join().unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        ["exclusive dropped", "shared taken"],
        "a shared slot was taken while the exclusive one was held"
    );

    let first = shared_slot();
    let waiter = std::thread::spawn(|| {
        let _heavy = exclusive_slot();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while exclusive_waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the exclusive slot never waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = shared_slot(); // would deadlock with a plain RwLock
    drop((first, second));
    waiter.join().unwrap();
}
