//! The vendored glommio's seventh change (`glommio::net::ring`, see
//! vendor/glommio/TESSERA-PATCH.md): receives into provided buffers and sends owned by the
//! ring, checked against a peer on a plain blocking socket in another thread.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdTcp};
use std::os::fd::AsRawFd;
use std::time::Duration;

use glommio::LocalExecutorBuilder;
use glommio::net::TcpStream;
use glommio::net::ring::{RecvPool, RingIo};

/// A loopback pair: the glommio side (connected inside the executor) and the peer.
fn run_with_peer<P, F>(peer: P, body: F)
where
    P: FnOnce(StdTcp) + Send + 'static,
    F: AsyncFnOnce(TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer_thread = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        peer(s);
    });
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            body(stream).await;
        })
        .unwrap()
        .join()
        .unwrap();
    peer_thread.join().unwrap();
}

/// Ends the glommio side: its ring operations go (none is in flight), then the socket's
/// write side closes, so the peer reads to the end.
async fn finish(io: RingIo, stream: &mut TcpStream) {
    drop(io);
    futures_lite::AsyncWriteExt::close(stream).await.unwrap();
}

/// A recognisable byte pattern: any reordering, loss or duplication shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn receives_arrive_whole_and_in_order_and_buffers_go_back() {
    const TOTAL: usize = 3 << 20;
    run_with_peer(
        |mut s| {
            // Many writes of odd sizes, so receives see every split.
            let data = pattern(TOTAL);
            for chunk in data.chunks(7919) {
                s.write_all(chunk).unwrap();
            }
        },
        async |stream| {
            // Fewer buffers than the data needs many times over: each must come back.
            let pool = RecvPool::new(4, 4096).unwrap();
            let mut io = RingIo::new(stream.as_raw_fd());
            let mut got = Vec::new();
            while let Some(buf) = io.recv(&pool).await.unwrap() {
                assert!(buf.len() <= pool.buf_size());
                got.extend_from_slice(&buf);
                assert!(got.len() <= TOTAL, "more bytes than were sent");
            }
            assert_eq!(got.len(), TOTAL);
            assert!(got == pattern(TOTAL), "bytes reordered, lost or duplicated");
            // One connection holds at most one buffer at a time: never exhausted.
            assert_eq!(pool.exhausted(), 0);
        },
    );
}

#[test]
fn an_empty_pool_falls_back_to_a_buffer_of_its_own() {
    run_with_peer(
        |mut s| {
            s.write_all(b"first").unwrap();
            // The other side holds the only buffer while this arrives.
            std::thread::sleep(Duration::from_millis(200));
            s.write_all(b"second").unwrap();
        },
        async |stream| {
            let pool = RecvPool::new(1, 64).unwrap();
            let mut io = RingIo::new(stream.as_raw_fd());
            let first = io.recv(&pool).await.unwrap().unwrap();
            assert_eq!(&first[..], b"first");
            // `first` still holds the pool's only buffer.
            let second = io.recv(&pool).await.unwrap().unwrap();
            assert_eq!(&second[..], b"second");
            assert_eq!(pool.exhausted(), 1);
            drop(first);
            assert_eq!(io.recv(&pool).await.unwrap().map(|b| b.len()), None);
        },
    );
}

#[test]
fn sends_go_out_whole_through_a_full_socket_buffer() {
    // Far more than the socket buffers hold: the ring's send comes back short and the rest
    // is resubmitted, while the peer reads slowly.
    const TOTAL: usize = 16 << 20;
    run_with_peer(
        |mut s| {
            let mut got = Vec::with_capacity(TOTAL);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.len() < TOTAL / 4 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            assert_eq!(got.len(), TOTAL);
            assert!(got == pattern(TOTAL), "bytes reordered, lost or duplicated");
        },
        async |mut stream| {
            let mut io = RingIo::new(stream.as_raw_fd());
            let mut data = pattern(TOTAL);
            let ptr = data.as_ptr();
            io.send_all(&mut data, TOTAL).await.unwrap();
            // The same buffer comes back, unchanged.
            assert_eq!(data.as_ptr(), ptr);
            assert!(data == pattern(TOTAL));
            // Part of a buffer only.
            let mut small = b"xyz".to_vec();
            io.send_all(&mut small, 0).await.unwrap();
            assert_eq!(small, b"xyz");
            finish(io, &mut stream).await;
        },
    );
}

#[test]
fn a_dropped_send_still_goes_out_before_the_next() {
    run_with_peer(
        |mut s| {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"onetwo");
        },
        async |mut stream| {
            let mut io = RingIo::new(stream.as_raw_fd());
            let mut one = b"one".to_vec();
            {
                // Polled once (the send is queued), then dropped.
                let fut = io.send_all(&mut one, 3);
                futures_lite::pin!(fut);
                let _ = futures_lite::future::poll_once(fut.as_mut()).await;
            }
            assert!(one.is_empty(), "the buffer went with the dropped send");
            let mut two = b"two".to_vec();
            io.send_all(&mut two, 3).await.unwrap();
            finish(io, &mut stream).await;
        },
    );
}

#[test]
fn queued_sends_go_out_in_order_and_hand_back_a_buffer() {
    run_with_peer(
        |mut s| {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            let want: Vec<u8> = (0..100)
                .flat_map(|i| format!("reply {i}\r\n").into_bytes())
                .collect();
            assert!(got == want, "replies reordered, lost or duplicated");
        },
        async |mut stream| {
            let mut io = RingIo::new(stream.as_raw_fd());
            let mut out = Vec::new();
            for i in 0..100 {
                out.extend_from_slice(format!("reply {i}\r\n").as_bytes());
                io.flush().await.unwrap();
                io.send(&mut out).unwrap();
                // The queued send owns the bytes; an empty buffer is handed back.
                assert!(out.is_empty());
                // A second send before the first is flushed is refused, not mixed in.
                let mut extra = b"never".to_vec();
                assert!(io.send(&mut extra).is_err());
                assert_eq!(extra, b"never");
            }
            io.flush().await.unwrap();
            finish(io, &mut stream).await;
        },
    );
}
