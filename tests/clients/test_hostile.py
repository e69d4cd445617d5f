"""Hostile input over real sockets, plaintext and TLS, while well-behaved clients run.

Every hostile connection must get memcached's error reply (the byte-exact replies are
those memcached 1.6.18 gives; tests/wire has the recorded cases) or be closed, the server
must count it, and the well-behaved clients running at the same time (one plaintext, one
TLS, each writing and reading back its own keys) must see every one of their replies
right.

Run by tests/clients/run_clients.sh with TESSERA_BIN set (see test_tls.py for fixtures).
"""

import os
import select
import socket
import ssl
import threading
import time

import pytest

from test_tls import (  # noqa: F401  (fixtures are used by name)
    TIMEOUT,
    WAIT,
    BioConn,
    Conn,
    ServerClosed,
    bin_path,
    ca1,
    ca2,
    client_ctx,
    free_ports,
    start_server,
    tcp_connect,
    tls_connect,
)

CLOSE = object()  # the server must close the connection

# (name, bytes sent, memcached's reply or CLOSE, counter that must grow)
CORPUS = [
    ("key_251_get", b"get " + b"k" * 251 + b"\r\n",
     b"CLIENT_ERROR bad command line format\r\n", "protocol_errors"),
    ("key_251_set", b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n", "protocol_errors"),
    ("value_over_item_size_max", b"set big 0 0 1048577\r\n" + b"a" * 1048577 + b"\r\n",
     b"SERVER_ERROR object too large for cache\r\n", "store_too_large"),
    ("data_longer_than_declared", b"set dl 0 0 3\r\nabcdef\r\n",
     b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", "protocol_errors"),
    ("data_missing_crlf", b"set mc 0 0 3\r\nabc\nX",
     b"CLIENT_ERROR bad data chunk\r\n", "protocol_errors"),
    ("bytes_negative", b"set nb 0 0 -1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n", "protocol_errors"),
    ("bytes_over_u32", b"set ob 0 0 4294967296\r\nx\r\n",
     b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", "protocol_errors"),
    ("exptime_overflow", b"set oe 0 99999999999999999999 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n", "protocol_errors"),
    ("flags_non_numeric", b"set nf abc 0 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n", "protocol_errors"),
    ("delta_non_numeric", b"incr nokey abc\r\n",
     b"CLIENT_ERROR invalid numeric delta argument\r\n", "protocol_errors"),
    ("exptime_non_numeric", b"touch k -abc\r\n",
     b"CLIENT_ERROR invalid exptime argument\r\n", "protocol_errors"),
    ("noreply_bad_chunk", b"set k 0 0 1 noreply\r\nxx\r\n", b"ERROR\r\n", "protocol_errors"),
    ("binary_garbage_line", b"\xff\xfe\xfd\x80\x81 \x01\x02\x00 garbage\r\n", b"ERROR\r\n",
     "protocol_errors"),
    # tessera closes at once (memcached waits for a newline that may never come)
    ("tls_client_hello_on_this_port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
     CLOSE, "protocol_closes"),
    ("unknown_command", b"foo bar baz\r\n", b"ERROR\r\n", "protocol_errors"),
    ("junk_2049_bytes_no_newline", b"y" * 2049, CLOSE, "protocol_closes"),
    ("line_1mb_no_newline", b"set " + b"x" * (1 << 20), CLOSE, "protocol_closes"),
    # memcached reads a get line on past 2048 bytes (keys may be many); tessera too, up to
    # the per-connection cap (-o read_buf_max, 256k in these tests), then closes
    ("get_line_past_read_buf_max", b"get " + b"x " * (1 << 19), CLOSE, "protocol_closes"),
    ("http_request", b"GET / HTTP/1.1\r\nHost: cache\r\n\r\n", CLOSE, "protocol_closes"),
]
SENTINEL = b"get __sentinel__\r\n"


class Verifier(threading.Thread):
    """A well-behaved client: sets its own keys to fresh values and reads each back."""

    def __init__(self, connect, tag, max_ops=200_000, max_secs=120):
        super().__init__(daemon=True)
        self.connect, self.tag = connect, tag
        self.max_ops, self.max_secs = max_ops, max_secs
        self.halt = threading.Event()
        self.ops = 0
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.max_secs
        try:
            c = self.connect()
            try:
                while not self.halt.is_set() and self.ops < self.max_ops:
                    if time.monotonic() > deadline:
                        break
                    key = b"verify:%s:%d" % (self.tag, self.ops % 64)
                    val = os.urandom(6).hex().encode() + b":%d" % self.ops
                    got = c.set(key, val)
                    assert got == b"STORED", (key, got)
                    back = c.get(key)
                    assert back == val, (key, val, back)
                    self.ops += 1
            finally:
                c.close()
        except Exception as e:  # reported by finish()
            self.error = e

    def finish(self):
        self.halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), f"verifier {self.tag} hung"
        assert self.error is None, f"verifier {self.tag}: {self.error!r}"
        return self.ops


def recv_until(sock, suffix):
    """Bytes until they end with `suffix`, or (bytes, 'closed') at a real close (EOF, a
    reset); the server going silent with the connection open is a failure."""
    buf = b""
    deadline = time.monotonic() + WAIT
    while not buf.endswith(suffix):
        assert time.monotonic() < deadline, f"no {suffix!r} in {WAIT} s; got {buf[:200]!r}"
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            chunk = b""
        except TimeoutError:
            raise AssertionError(
                f"nothing for {sock.gettimeout()} s and no close: the server kept the "
                f"connection open (waiting for {suffix[:40]!r}; got {buf[:200]!r})") from None
        if not chunk:
            return buf, "closed"
        buf += chunk
    return buf, None


def play(sock, payload, expect):
    """Sends one hostile payload and checks the reply (then the connection is done)."""
    try:
        if expect is CLOSE:
            sock.sendall(payload)
        else:
            sock.sendall(payload + SENTINEL)
    except TimeoutError:
        # not a close: the server stopped reading and kept the connection open
        raise AssertionError(f"sending timed out after {sock.gettimeout()} s: the server "
                             "stopped reading but did not close the connection") from None
    except OSError as e:  # the server closed while we were still sending (ssl errors too)
        assert expect is CLOSE, repr(e)
        return
    if expect is CLOSE:
        got, state = recv_until(sock, b"\x00never")
        assert state == "closed" and got == b"", got[:200]
    else:
        got, state = recv_until(sock, expect + b"END\r\n")
        assert state is None and got == expect + b"END\r\n", got[:200]


def recv_or_eof(sock):
    """Bytes from a raw socket, b"" at EOF or on a reset (both are the server's close)."""
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


def stats_delta(before, after, name):
    return int(after.get(name, 0)) - int(before.get(name, 0))


def two_port_server(start_server, **kw):
    """A `-t 2` server with a TLS listener and a plaintext (`notls:`) one; stats over TLS."""
    p_plain, p_tls = free_ports(2)
    srv = start_server(
        threads=2, listen=[f"notls:127.0.0.1:{p_plain}", f"127.0.0.1:{p_tls}"], **kw,
    )
    srv.stats_port = p_tls
    return srv, p_plain, p_tls


def start_verifiers(srv, *specs):
    """The server's stats, then a started Verifier for each (connect, tag)."""
    before = srv.stats()
    verifiers = [Verifier(connect, tag) for connect, tag in specs]
    for v in verifiers:
        v.start()
    return before, verifiers


def test_bad_input_corpus_plaintext_and_tls(start_server, ca1):
    srv, p_plain, p_tls = two_port_server(
        start_server, extra=["-I", "128k", "-o", "read_buf_max=256k"])
    ctx = client_ctx(ca1.ca)
    before, verifiers = start_verifiers(
        srv, (lambda: tcp_connect(p_plain), b"plain"), (lambda: tls_connect(p_tls, ctx), b"tls"))
    counts = {}
    try:
        for rounds in range(3):
            for name, payload, expect, counter in CORPUS:
                for kind in ("plain", "tls"):
                    c = tcp_connect(p_plain) if kind == "plain" else tls_connect(p_tls, ctx)
                    try:
                        play(c.sock, payload, expect)
                    except (AssertionError, OSError) as e:
                        raise AssertionError(f"{name} over {kind}: {e!r}") from e
                    finally:
                        c.close()
                    counts[counter] = counts.get(counter, 0) + 1
    finally:
        ops = [v.finish() for v in verifiers]
    assert all(n > 0 for n in ops), ops
    srv.assert_alive()
    after = srv.stats()
    for counter, n in counts.items():
        assert stats_delta(before, after, counter) >= n, (counter, n, before.get(counter),
                                                         after.get(counter))
    # nothing hostile was stored
    c = tls_connect(p_tls, ctx)
    try:
        for key in (b"big", b"dl", b"mc", b"nb", b"ob", b"oe", b"nf"):
            assert c.get(key) is None, key
    finally:
        c.close()


def test_tls_record_faults(start_server, ca1):
    """Corrupted and truncated records, TLS sent to the plaintext port, plaintext to the TLS
    port: each is refused or closed and counted, and a verifier is unaffected."""
    srv, p_plain, p_tls = two_port_server(start_server)
    ctx = client_ctx(ca1.ca)
    before, (v,) = start_verifiers(srv, (lambda: tls_connect(p_tls, ctx), b"rec"))
    try:
        for i in range(10):
            # A record with one ciphertext byte flipped: bad_record_mac, then close.
            b = BioConn(p_tls, ctx)
            try:
                wire = bytearray(b.seal(b"set corrupt:%d 0 0 1\r\nx\r\n" % i))
                wire[len(wire) // 2] ^= 0x40
                b.sock.sendall(bytes(wire))
                got, state = recv_until(b.sock, b"\x00never")
                # (what came back: session tickets, then an alert; TLS 1.3 encrypts both)
                assert state == "closed", got
            finally:
                b.close()
            # A record cut short, then the client's end of the connection closed.
            b = BioConn(p_tls, ctx)
            try:
                wire = b.seal(b"set trunc:%d 0 0 1\r\nx\r\n" % i)
                b.sock.sendall(wire[:-7])
                b.sock.shutdown(socket.SHUT_WR)
                got, state = recv_until(b.sock, b"\x00never")
                assert state == "closed", got
            finally:
                b.close()
            # Plaintext to the TLS port: never answered, closed.
            s = socket.create_connection(("127.0.0.1", p_tls), timeout=TIMEOUT)
            try:
                s.sendall(b"set plain:%d 0 0 1\r\nx\r\nget plain:%d\r\n" % (i, i))
                got, state = recv_until(s, b"\x00never")
                assert state == "closed" and b"STORED" not in got and b"VALUE" not in got, got
            finally:
                s.close()
            # TLS to the plaintext port: the server sees a handshake record and closes.
            raw = socket.create_connection(("127.0.0.1", p_plain), timeout=TIMEOUT)
            try:
                with pytest.raises((ssl.SSLError, OSError)):
                    ctx.wrap_socket(raw, server_hostname="localhost")
            finally:
                raw.close()
    finally:
        ops = v.finish()
    assert ops > 0
    srv.assert_alive()
    after = srv.stats()
    assert stats_delta(before, after, "ssl_proto_errors") >= 20, after  # corrupt + truncated
    assert stats_delta(before, after, "ssl_handshake_errors") >= 10, after  # plaintext
    assert stats_delta(before, after, "protocol_closes") >= 10, after  # TLS on plain port
    c = tls_connect(p_tls, ctx)
    try:
        for i in range(10):
            for key in (b"corrupt:%d" % i, b"trunc:%d" % i, b"plain:%d" % i):
                assert c.get(key) is None, key
    finally:
        c.close()


def test_handshake_flood_and_slow_handshakes(start_server, ca1):
    """200 connections that never finish a handshake (silent, or a ClientHello cut short,
    or a byte at a time) are all closed at the handshake deadline and counted, while a TLS
    and a plaintext verifier keep working."""
    # The deadline (3 s) leaves the verifiers' own handshakes time on a busy machine.
    srv, p_plain, p_tls = two_port_server(start_server, opts={"ssl_handshake_timeout": "3"})
    ctx = client_ctx(ca1.ca)
    # the first bytes of a real ClientHello
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    before, verifiers = start_verifiers(
        srv, (lambda: tcp_connect(p_plain), b"fplain"), (lambda: tls_connect(p_tls, ctx), b"ftls"))
    flood = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", p_tls), timeout=TIMEOUT)
            if i % 3 == 1:
                s.sendall(hello[: len(hello) // 2])
            elif i % 3 == 2:
                s.sendall(hello[:3])
            flood.append(s)
        ops_mid = [v.ops for v in verifiers]
        # A byte at a time, every 0.2 s (the pace is the attack), until the server closes
        # each: a deadline that a byte pushed back would never close them. The verifiers
        # must make progress under the flood: should the dribblers be gone first, fresh
        # silent connections keep it up until they have (bounded).
        dribbling = set(flood[2::3])
        k = 3
        deadline = time.monotonic() + WAIT
        while dribbling or not all(v.ops > m for v, m in zip(verifiers, ops_mid)):
            assert time.monotonic() < deadline, (
                f"after {WAIT} s, {len(dribbling)} connections sending a byte every 0.2 s "
                f"are still open; verifier ops {[v.ops for v in verifiers]} since {ops_mid}")
            if not dribbling:
                flood.append(socket.create_connection(("127.0.0.1", p_tls), timeout=TIMEOUT))
            for s in list(dribbling):
                try:
                    s.sendall(hello[k : k + 1])
                except (ConnectionResetError, BrokenPipeError):
                    dribbling.discard(s)  # closed (seen again below)
            k += 1
            pace = time.monotonic() + 0.2
            while dribbling and (left := pace - time.monotonic()) > 0:
                readable, _, _ = select.select(list(dribbling), [], [], left)
                for s in readable:
                    if not recv_or_eof(s):
                        dribbling.discard(s)
            if not dribbling:
                time.sleep(max(0.0, pace - time.monotonic()))
        # Every connection of the flood gets a real close: EOF or a reset, not a timeout.
        open_ = 0
        deadline = time.monotonic() + WAIT
        for s in flood:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                for _ in range(100):  # at most an alert, then EOF
                    if not recv_or_eof(s):
                        break
                else:
                    open_ += 1
            except TimeoutError:
                open_ += 1
        assert open_ == 0, (f"{open_} of {len(flood)} connections that never finished a "
                            f"handshake still open (no EOF or reset) {WAIT} s after the flood")
    finally:
        for s in flood:
            s.close()
        ops = [v.finish() for v in verifiers]
    assert all(n > 0 for n in ops), ops
    srv.assert_alive()
    after = srv.stats()
    assert stats_delta(before, after, "ssl_handshake_timeouts") >= len(flood), after
