//! What a connection speaks once set up: plaintext (TCP or a unix socket), TLS records in
//! rustls, or TLS records in the kernel (kTLS), behind one interface, so the connection
//! loop never asks which. An enum, not a trait object: each call is a match the compiler
//! sees through, with no allocation or indirect call per request.

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::ctx::Ctx;
use super::input::Session;
use crate::sock::{ByteStream, Sock, Stream};
use crate::stats::ShardStats;
use crate::tls::accept::Records;
use crate::tls::conn::TlsStream;
use crate::tls::ktls::KtlsStream;

/// A connection's transport.
#[derive(Debug)]
pub(super) enum Transport {
    Plain(Sock),
    /// TLS records in rustls.
    Tls(Sock, Box<TlsStream>),
    /// TLS records in the kernel.
    Ktls(TcpStream, Box<KtlsStream>),
}

/// A connection's entry in `stats conns`: its fd (the key), peer and local addresses.
pub(super) struct ConnEntry {
    pub(super) fd: i32,
    pub(super) addr: String,
    pub(super) listen_addr: Option<String>,
}

impl Transport {
    /// A plaintext connection, its data in the ring when the executor has a receive pool.
    pub(super) fn plain(stream: Stream, ctx: &Ctx) -> Transport {
        Transport::Plain(Sock::new(stream, ctx.rbufs.ring.as_ref()))
    }

    /// A TCP connection whose handshake finished, on the record path it chose.
    pub(super) fn secured(stream: TcpStream, records: Records, ctx: &Ctx) -> Transport {
        match records {
            Records::User(t) => {
                Transport::Tls(Sock::new(Stream::Tcp(stream), ctx.rbufs.ring.as_ref()), t)
            }
            Records::Kernel(k) => Transport::Ktls(stream, k),
        }
    }

    /// "plaintext", "TLS (rustls)" or "TLS (kTLS)", for logs.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Transport::Plain(_) => "plaintext",
            Transport::Tls(..) => "TLS (rustls)",
            Transport::Ktls(..) => "TLS (kTLS)",
        }
    }

    /// Where TLS records are handled, for the handshake log line.
    pub(super) fn record_path(&self) -> &'static str {
        match self {
            Transport::Ktls(..) => "kernel (kTLS)",
            _ => "userspace (rustls)",
        }
    }

    /// The peer's address, for logs.
    pub(super) fn peer(&self) -> String {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s.stream().peer(),
            Transport::Ktls(s, _) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    /// The record path for `stats conns` ("ktls/TLSv1.3/..."); None for plaintext.
    pub(super) fn tls_label(&self) -> Option<String> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(_, t) => Some(t.label()),
            Transport::Ktls(_, k) => Some(k.label().to_string()),
        }
    }

    /// Counts the connection in (`open`) or out of the TLS connection gauges.
    pub(super) fn count(&self, st: &ShardStats, open: bool) {
        let gauge = match self {
            Transport::Plain(_) => return,
            Transport::Tls(..) => &st.ssl_userspace_connections,
            Transport::Ktls(..) => &st.ssl_ktls_connections,
        };
        if open {
            gauge.add(1);
            st.ssl_connections.add(1);
        } else {
            gauge.sub(1);
            st.ssl_connections.sub(1);
        }
    }

    /// The connection's `stats conns` entry. `id` numbers a unix connection, whose fd
    /// glommio hides.
    pub(super) fn conn_entry(&self, id: u64) -> ConnEntry {
        use std::os::fd::AsRawFd;
        let tcp = match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s.tcp(),
            Transport::Ktls(s, _) => Some(s),
        };
        match tcp {
            Some(s) => ConnEntry {
                fd: s.as_raw_fd(),
                addr: s.peer_addr().map(|a| sock_name(&a)).unwrap_or_default(),
                listen_addr: s.local_addr().ok().map(|a| sock_name(&a)),
            },
            // Numbered past any real fd instead.
            None => ConnEntry {
                fd: (1 << 24) + (id % (1 << 24)) as i32,
                addr: "unix".into(),
                listen_addr: None,
            },
        }
    }

    /// Whether part of a TLS record is buffered in rustls (a request may be on its way).
    pub(super) fn mid_record(&self) -> bool {
        matches!(self, Transport::Tls(_, t) if t.has_partial_record())
    }

    /// Whether kTLS is near the cipher's record limit and cannot rekey: the connection is
    /// to end at the next quiet moment.
    pub(super) fn near_limit(&self) -> bool {
        matches!(self, Transport::Ktls(_, k) if k.near_limit())
    }

    /// Reads input into `session`: returns the plaintext bytes added (0 at EOF). A session
    /// with nothing buffered waits holding no read buffer: the read lands in the executor's
    /// scratch, and a buffer is taken only when bytes arrive.
    pub(super) async fn read(
        &mut self,
        session: &mut Session,
        ctx: &Ctx,
    ) -> std::io::Result<usize> {
        let st = &ctx.exec.shard.stats;
        match self {
            // In the ring a receive holds a pool buffer, copied into the session; on the
            // readiness path an idle connection reads into the executor's scratch.
            Transport::Plain(s) if session.is_drained() || s.in_ring() => {
                session.release(&ctx.rbufs);
                let bufs = &ctx.rbufs;
                let n = s
                    .read_with(&bufs.scratch, &mut |b| session.feed_from(bufs, b))
                    .await?;
                st.bytes_read.add(n as u64);
                Ok(n)
            }
            Transport::Ktls(s, k) if session.is_drained() => {
                session.release(&ctx.rbufs);
                let scratch = &ctx.rbufs.scratch;
                let n = k.read(s, &**scratch).await?;
                if n > 0 {
                    session.feed_from(&ctx.rbufs, &scratch.borrow()[..n]);
                }
                st.bytes_read.add(n as u64);
                Ok(n)
            }
            Transport::Plain(s) => {
                // Something buffered, readiness path: read straight after it.
                let space = session.read_space();
                let n = s.read(space).await?;
                session.end += n;
                st.bytes_read.add(n as u64);
                Ok(n)
            }
            Transport::Ktls(s, k) => {
                let space = session.read_space();
                let n = k.read(s, space).await?;
                session.end += n;
                st.bytes_read.add(n as u64);
                Ok(n)
            }
            Transport::Tls(s, t) => {
                let mut raw = 0u64;
                if session.is_drained() {
                    session.release(&ctx.rbufs);
                }
                let bufs = &ctx.rbufs;
                let n = t
                    .read_plain(
                        s,
                        &mut |p| session.feed_from(bufs, p),
                        &mut raw,
                        &bufs.scratch,
                    )
                    .await?;
                st.bytes_read.add(raw);
                Ok(n)
            }
        }
    }

    /// Writes `data` (encrypted, for TLS); returns the bytes that went on the wire. The
    /// plaintext path moves `data` into the ring's send (no copy) and returns once it is
    /// queued, leaving `data` empty (an earlier send's buffer).
    pub(super) async fn write(&mut self, data: &mut Vec<u8>, ctx: &Ctx) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => {
                let len = data.len();
                s.send_queued(data).await?;
                Ok(len)
            }
            Transport::Tls(s, t) => {
                let pool = ctx.wbufs.as_ref().ok_or_else(|| {
                    std::io::Error::other("TLS connection without a write buffer pool")
                })?;
                t.write_plain(s, data, pool).await
            }
            Transport::Ktls(s, k) => k.write_all(s, data).await,
        }
    }

    /// Ends the connection: TLS sends close_notify (after an error, whatever alert rustls
    /// queued), then the socket closes. `failed`: the connection loop ended in an error.
    pub(super) async fn close(&mut self, failed: bool, st: &ShardStats) {
        match self {
            Transport::Plain(s) => s.close().await,
            Transport::Tls(s, t) => {
                if failed {
                    st.ssl_proto_errors.incr();
                    t.send_alerts(s).await;
                } else {
                    t.close(s).await;
                }
                let _ = s.close().await;
            }
            Transport::Ktls(s, k) => {
                if failed {
                    st.ssl_proto_errors.incr();
                }
                // After an error the alert (if any) is already out; close_notify is sent once.
                k.close(s).await;
                let _ = s.close().await;
            }
        }
    }
}

/// memcached's `stats conns` address form.
pub(super) fn sock_name(a: &std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(_) => format!("tcp:{a}"),
        std::net::SocketAddr::V6(_) => format!("tcp6:{a}"),
    }
}
