"""TLS tests: tessera's -Z / ssl_* options through Python's ssl, pymemcache and openssl.

Unlike test_pymemcache.py, these tests start their own tessera processes (each test
needs its own TLS configuration) on loopback, with certificates made by `tessera certs`
in a temporary directory.
Environment:
  TESSERA_BIN   path of the tessera binary (default: target/release/tessera under the
                repository root)

Every socket has a timeout, every wait is bounded, and every server started here is
killed at fixture teardown. Servers run with -t 1 where exact stats counts are asserted.
No test waits a fixed time for the server to get somewhere: it polls what the server shows
(a stats counter, bytes_read, a log line), and the bound on the poll (WAIT) is a liveness
bound, never the thing tested.
"""

import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from crashes import CRASH_SIGNALS, log_crash
from pymemcache.client.base import Client

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 5  # seconds, for every socket operation
START_TIMEOUT = 10  # seconds for a server to print its listening line
# Seconds a poll waits for a state the server reaches at once unless the machine is starved
# (a counter moving, a log line): generous, as it only bounds a failing test's wait.
WAIT = 20


def tessera_bin():
    path = os.environ.get("TESSERA_BIN") or str(REPO / "target" / "release" / "tessera")
    if not os.path.isabs(path):
        path = str(REPO / path)
    return path


def _die_with_parent():
    """preexec_fn: SIGKILL the child if pytest dies without running fixture teardown
    (e.g. killed by the harness's timeout). Linux prctl(PR_SET_PDEATHSIG); best effort."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_ports(n):
    """n distinct free loopback ports (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------------ certificates


class Certs:
    def __init__(self, d):
        self.dir = Path(d)
        for name in ("ca", "server", "client"):
            setattr(self, name, str(self.dir / f"{name}.pem"))
            setattr(self, name + "_key", str(self.dir / f"{name}.key"))


def make_certs(d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        [tessera_bin(), "certs", "--out", str(d)],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, f"tessera certs failed: {r.stderr}"
    c = Certs(d)
    for f in (c.ca, c.server, c.server_key, c.client, c.client_key):
        assert os.path.getsize(f) > 0, f
    return c


@pytest.fixture(scope="session")
def bin_path():
    path = tessera_bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"tessera binary {path} not found or not executable (set TESSERA_BIN)")
    return path


@pytest.fixture(scope="session")
def ca1(bin_path, tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("ca1"))


@pytest.fixture(scope="session")
def ca2(bin_path, tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("ca2"))


def client_ctx(*cafiles, cert=None, key=None, maxv=None, minv=None, no_ticket=False):
    """A verifying client context trusting only `cafiles`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    for ca in cafiles:
        ctx.load_verify_locations(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if maxv:
        ctx.maximum_version = maxv
    if minv:
        ctx.minimum_version = minv
    if no_ticket:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


# ------------------------------------------------------------------ connections


class ServerClosed(Exception):
    """The server closed the connection (EOF)."""


class Conn:
    """Line-oriented memcached text-protocol connection over a (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ServerClosed(f"connection closed; pending {self.buf[:80]!r}")
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.readline()

    def set(self, key, value):
        return self.cmd(b"set %s 0 0 %d\r\n%s" % (key, len(value), value))

    def get(self, key):
        self.send(b"get %s\r\n" % key)
        line = self.readline()
        if line == b"END":
            return None
        parts = line.split()
        assert parts[0] == b"VALUE" and parts[1] == key, line
        data = self.read_exact(int(parts[3]) + 2)
        assert self.readline() == b"END"
        return data[:-2]

    def assert_usable(self, key=b"usable"):
        assert self.set(key, b"ok-" + key) == b"STORED"
        assert self.get(key) == b"ok-" + key

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tcp_connect(port):
    return Conn(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))


def tls_connect(port, ctx, session=None, hostname="localhost"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        s = ctx.wrap_socket(raw, server_hostname=hostname, session=session)
    except BaseException:
        raw.close()
        raise
    return Conn(s)


def tls_attempt(port, ctx):
    """Handshake and run `version`. Returns the reply line, or the exception raised.

    With TLS 1.3 the server verifies a client certificate after the client's handshake
    is done, so a refusal may only show on the first read: both count as a refusal.
    A timeout is not a refusal (the server must answer or close): it is re-raised.
    """
    try:
        c = tls_connect(port, ctx)
    except TimeoutError:
        raise
    except (ssl.SSLError, OSError) as e:
        return e
    try:
        return c.cmd(b"version")
    except TimeoutError:
        raise
    except (ssl.SSLError, OSError, ServerClosed) as e:
        return e
    finally:
        c.close()


def assert_refused(result):
    assert isinstance(result, Exception), f"expected a refused connection, got {result!r}"


def assert_works(result):
    assert isinstance(result, bytes) and result.startswith(b"VERSION "), result


# ------------------------------------------------------------------ servers


# Every server (or other process) a test started and has not stopped yet: conftest.py adds
# each one's state and log to the report of a failed test.
RUNNING = []


def describe(p):
    """A started process's command, whether it still runs, and the end of its log."""
    code = p.proc.poll()
    state = "still running" if code is None else f"exited with code {code}"
    log = p.output()
    if len(log) > 8000:
        log = "[...]\n" + log[-8000:]
    return f"$ {' '.join(str(a) for a in p.args)}\n({state})\n{log}"


def crash(p):
    """Why a stopped process counts as crashed, or None. A SIGKILL after the grace time, or
    an exit status a test asked for, is not a crash."""
    code = p.proc.poll()
    if code is not None and code < 0 and -code in CRASH_SIGNALS:
        return f"killed by {signal.Signals(-code).name}"
    mark = log_crash(p.output())
    return f"its log has {mark!r}" if mark else None


def assert_no_crash(procs):
    """Fails (at fixture teardown) if any of the stopped processes crashed, at any point of
    the test, shutdown included."""
    crashed = [f"{describe(p)}\n-> crashed: {why}" for p in procs if (why := crash(p))]
    assert not crashed, "\n\n".join(crashed)


def stop_process(proc):
    """SIGTERM (a graceful shutdown), then SIGKILL if it is still running after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Proc:
    """A started process with its output in a log file, in RUNNING until stopped."""

    def __init__(self, name, args, log_path):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            preexec_fn=_die_with_parent,
        )
        RUNNING.append(self)

    def output(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def check_running(self):
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited (code {self.proc.returncode}): "
                        f"{' '.join(self.args)}\n{self.output()}")

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        if self in RUNNING:
            RUNNING.remove(self)


def wait_listening(p):
    """The ports of a tessera's listening line (-v), waiting for it (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in p.output().splitlines():
            if ": listening on " in line:
                addrs = line.split(": listening on ", 1)[1].split(",")
                return [int(a.strip().rsplit(":", 1)[1]) for a in addrs]
        if p.proc.poll() is not None:
            pytest.fail(
                f"{p.name} exited during startup (code {p.proc.returncode}): "
                f"{' '.join(p.args)}\n{p.output()}"
            )
        time.sleep(0.02)
    pytest.fail(f"{p.name} printed no listening line in {START_TIMEOUT} s:\n{p.output()}")


class Server(Proc):
    def __init__(self, args, log_path, stats_ctx):
        super().__init__("tessera", args, log_path)
        self.stats_ctx = stats_ctx  # None: plaintext stats connection
        # Bytes the plaintext stats connections sent, which bytes_read counts too.
        self.stats_sent = 0
        try:
            self.ports = wait_listening(self)
        except BaseException:
            # (the failure carries the output; the fixture never saw this server)
            self.stop()
            raise
        self.stats_port = self.ports[0]

    @property
    def port(self):
        return self.ports[0]

    def stats(self, kind=""):
        if self.stats_ctx is None:
            c = tcp_connect(self.stats_port)
        else:
            c = tls_connect(self.stats_port, self.stats_ctx)
        try:
            request = b"stats " + kind.encode() + b"\r\n" if kind else b"stats\r\n"
            if self.stats_ctx is None:
                self.stats_sent += len(request)
            c.send(request)
            out = {}
            while True:
                line = c.readline()
                if line == b"END":
                    return out
                parts = line.decode().split(" ", 2)
                assert parts[0] == "STAT", line
                out[parts[1]] = parts[2] if len(parts) > 2 else ""
        finally:
            c.close()

    def stat(self, name):
        return int(self.stats()[name])

    def wait_stat(self, name, pred, timeout=WAIT):
        """Polls stats until pred(value) holds; returns the last value (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.stat(name)
            if pred(v) or time.monotonic() >= deadline:
                return v
            time.sleep(0.05)

    def plain_stats(self, port):
        """Stats over the plaintext (notls:) listener on `port`, for read_mark/wait_read."""
        self.stats_port, self.stats_ctx = port, None

    def read_mark(self):
        """What the server has read so far from clients other than the stats connections
        (bytes_read less what they sent): the base for wait_read."""
        assert self.stats_ctx is None, "read_mark needs plain_stats: a TLS stats " \
            "connection's own bytes are not known"
        return self.stat("bytes_read") - self.stats_sent

    def wait_read(self, mark, n):
        """Waits (bounded) until the server has read n more bytes from other clients than
        at `mark`. A TLS connection's bytes count once a whole record is decrypted (the
        plaintext went to the connection), a plaintext connection's when read."""
        deadline = time.monotonic() + WAIT
        while True:
            got = self.read_mark() - mark
            if got >= n:
                return
            assert time.monotonic() < deadline, \
                f"the server read {got} of {n} bytes sent to it in {WAIT} s"
            time.sleep(0.01)

    def assert_alive(self):
        assert self.proc.poll() is None, f"tessera died (code {self.proc.returncode}):\n{self.output()}"


@pytest.fixture
def start_server(bin_path, ca1, ca2, tmp_path):
    """start_server(opts={...}, listen=[...], extra=[...], threads=1, certs=ca1,
    plain_stats=False).

    opts are the -o ssl_* options (ssl_chain_cert/ssl_key default to certs' server
    cert; a value of None drops the option). listen entries become -l flags; without
    them the server listens on 127.0.0.1 with -p 0. plain_stats adds a notls: listener
    that only stats use (Server.plain_stats), left out of the server's ports.
    """
    servers = []

    def factory(opts=None, listen=None, extra=(), threads=1, certs=None, tls=True,
                plain_stats=False):
        certs = certs or ca1
        args = [bin_path, "-U", "0", "-v", "-t", str(threads)]
        if listen:
            args += ["-p", "0"]
            for entry in listen:
                args += ["-l", entry]
        else:
            args += ["-p", "0", "-l", "127.0.0.1"]
        stats_ctx = None
        if tls:
            o = {"ssl_chain_cert": certs.server, "ssl_key": certs.server_key}
            o.update(opts or {})
            o = {k: v for k, v in o.items() if v is not None}
            args += ["-Z", "-o", ",".join(k if v == "" else f"{k}={v}" for k, v in o.items())]
            # offers the CA1 client cert (for mtls/verify_mode); tests that switch the
            # server cert replace stats_ctx
            stats_ctx = client_ctx(certs.ca, cert=ca1.client, key=ca1.client_key)
        if plain_stats:
            stats_port = free_ports(1)[0]
            args += ["-l", f"notls:127.0.0.1:{stats_port}"]
        args += list(extra)
        srv = Server(args, tmp_path / f"tessera-{len(servers)}.log", stats_ctx)
        servers.append(srv)
        if plain_stats:
            srv.ports.remove(stats_port)
            srv.plain_stats(stats_port)
        return srv

    yield factory
    for srv in servers:
        srv.stop()
    assert_no_crash(servers)


# ------------------------------------------------------------------ (a) pymemcache


def test_pymemcache_over_tls(start_server, ca1):
    srv = start_server(extra=["-I", "1m"])
    ctx = client_ctx(ca1.ca)
    c = Client(("127.0.0.1", srv.port), tls_context=ctx, connect_timeout=TIMEOUT,
               timeout=TIMEOUT, default_noreply=False)
    try:
        assert c.set("k1", b"hello") is True
        assert isinstance(c.sock, ssl.SSLSocket) and c.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert c.get("k1") == b"hello"
        assert c.delete("k1") is True
        assert c.get("k1") is None
        assert c.set("n", b"41") is True
        assert c.incr("n", 1) == 42
        assert c.get("n") == b"42"
        val, cas = c.gets("n")
        assert val == b"42" and cas
        assert c.cas("n", b"100", cas) is True
        assert c.cas("n", b"200", cas) is False  # stale cas
        assert c.get("n") == b"100"

        big = bytes(range(256)) * (1048000 // 256) + b"x" * (1048000 % 256)
        assert len(big) == 1048000
        assert c.set("big", big) is True
        assert c.get("big") == big
    finally:
        c.close()

    # pipelined burst over one TLS connection: all requests first, replies in order
    conn = tls_connect(srv.port, ctx)
    try:
        n = 500
        conn.send(b"".join(b"set p%d 0 0 %d\r\nval-%d\r\n" % (i, len(b"val-%d" % i), i)
                           for i in range(n)))
        for i in range(n):
            assert conn.readline() == b"STORED", i
        conn.send(b"".join(b"get p%d\r\n" % i for i in range(n)))
        for i in range(n):
            want = b"val-%d" % i
            assert conn.readline() == b"VALUE p%d 0 %d" % (i, len(want)), i
            assert conn.read_exact(len(want) + 2) == want + b"\r\n"
            assert conn.readline() == b"END"
    finally:
        conn.close()
    srv.assert_alive()


class BioConn:
    """A TLS client over memory BIOs: the test decides how its ciphertext is cut up."""

    def __init__(self, port, ctx):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        for _ in range(50):
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self._recv()
        else:
            raise AssertionError("handshake did not finish")
        self.sock.sendall(self.out.read())

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ServerClosed()
        self.inc.write(data)

    def seal(self, plain):
        """The ciphertext (one or more records) of `plain`."""
        self.obj.write(plain)
        return self.out.read()

    def read_exact(self, n):
        got = b""
        for _ in range(10000):
            if len(got) >= n:
                break
            try:
                got += self.obj.read(n - len(got))
            except ssl.SSLWantReadError:
                self._recv()
        assert len(got) == n, (len(got), n)
        return got

    def close(self):
        self.sock.close()


def record_ends(wire):
    """Where each TLS record of `wire` ends (a record: type, version, 2-byte length, body)."""
    ends, i = [], 0
    while i < len(wire):
        i += 5 + int.from_bytes(wire[i + 3 : i + 5], "big")
        ends.append(i)
    assert i == len(wire), "not whole records"
    return ends


def test_records_cut_anywhere_and_interleaved(start_server, ca1):
    """Each connection's ciphertext (records of up to 16 KiB) arrives in pieces cut at
    arbitrary bytes, interleaved with other connections' pieces. A piece read while its
    connection had nothing buffered is decrypted in the executor's shared scratch buffer,
    a partial record is kept by the connection: each must get back exactly its own data."""
    # rustls's record path (kTLS would take the records in the kernel); bytes_read then
    # counts ciphertext, which wait_read below compares with the records sent.
    srv = start_server(opts={"ssl_kernel_tls": "off"}, extra=["-t", "1"], plain_stats=True)
    ctx = client_ctx(ca1.ca)
    conns = [BioConn(srv.port, ctx) for _ in range(8)]
    try:
        plans = []
        for i, c in enumerate(conns):
            v = bytes((i + j) % 251 for j in range(7 + i * i * 1000))
            wire = c.seal(b"set frag:%d 0 0 %d\r\n" % (i, len(v)) + v + b"\r\n")
            wire += c.seal(b"get frag:%d\r\n" % i)
            cuts = sorted({0, len(wire)} | {(len(wire) * k) // 7 + i for k in range(1, 7)})
            plans.append((v, wire, [w for w in zip(cuts, cuts[1:]) if w[0] < w[1]]))
        mark = srv.read_mark()
        whole = [0] * len(conns)  # per connection: the bytes of its records sent whole
        for step in range(8):
            for i, (c, (_, wire, pieces)) in enumerate(zip(conns, plans)):
                if step < len(pieces):
                    a, b = pieces[step]
                    c.sock.sendall(wire[a:b])
                    whole[i] = max([e for e in record_ends(wire) if e <= b], default=0)
            # Before the next pieces, the server has decrypted every record sent whole, so
            # they find their connections as this step left them (a partial record kept,
            # or nothing buffered) rather than arriving with this step's in one read.
            srv.wait_read(mark, sum(whole))
        for i, (c, (v, _, _)) in enumerate(zip(conns, plans)):
            want = b"STORED\r\nVALUE frag:%d 0 %d\r\n" % (i, len(v)) + v + b"\r\nEND\r\n"
            assert c.read_exact(len(want)) == want, i
    finally:
        for c in conns:
            c.close()
    srv.assert_alive()


# ------------------------------------------------------------------ (b) openssl s_client


@pytest.mark.parametrize("version_flag", ["-tls1_2", "-tls1_3"])
def test_openssl_s_client(start_server, ca1, version_flag):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    srv = start_server()
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", ca1.ca,
         "-verify_return_error", "-quiet", version_flag],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    try:
        # -quiet implies -ign_eof: the end of stdin does not end s_client; `quit` makes
        # the server close, which does (a server that kept the connection fails here)
        out, err = p.communicate(b"set sc 0 0 5\r\nhello\r\nget sc\r\nquit\r\n",
                                 timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    assert b"STORED\r\nVALUE sc 0 5\r\nhello\r\nEND\r\n" in out, (out, err)


# ------------------------------------------------------------------ (c) untrusted server


def test_untrusting_client_fails(start_server, ca2):
    srv = start_server()
    before = srv.stat("ssl_handshake_errors")
    for ctx in (ssl.create_default_context(), client_ctx(ca2.ca)):
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_connect(srv.port, ctx)
    after = srv.wait_stat("ssl_handshake_errors", lambda v: v >= before + 2)
    assert after == before + 2


# ------------------------------------------------------------------ (d) client certificates


@pytest.mark.parametrize("mode", ["mtls_listener", "verify_mode_2"])
def test_client_certificates(start_server, ca1, ca2, mode):
    if mode == "mtls_listener":
        srv = start_server(opts={"ssl_ca_cert": ca1.ca}, listen=["mtls:127.0.0.1:0"])
    else:
        srv = start_server(opts={"ssl_ca_cert": ca1.ca, "ssl_verify_mode": "2"})
    base = srv.stat("ssl_verify_failures")

    assert_refused(tls_attempt(srv.port, client_ctx(ca1.ca)))
    v1 = srv.wait_stat("ssl_verify_failures", lambda v: v > base)
    assert v1 == base + 1

    assert_works(tls_attempt(srv.port, client_ctx(ca1.ca, cert=ca1.client, key=ca1.client_key)))
    c = tls_connect(srv.port, client_ctx(ca1.ca, cert=ca1.client, key=ca1.client_key))
    try:
        c.assert_usable()
    finally:
        c.close()

    # a client certificate from an unrelated CA
    assert_refused(tls_attempt(srv.port, client_ctx(ca1.ca, cert=ca2.client, key=ca2.client_key)))
    v2 = srv.wait_stat("ssl_verify_failures", lambda v: v > v1)
    assert v2 == v1 + 1
    srv.assert_alive()


# ------------------------------------------------------------------ (e) minimum version


def test_min_version_tls13(start_server, ca1):
    srv = start_server(opts={"ssl_min_version": "tlsv1.3"})
    with pytest.raises(ssl.SSLError) as ei:
        tls_connect(srv.port, client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2))
    assert not isinstance(ei.value, ssl.SSLCertVerificationError)
    c = tls_connect(srv.port, client_ctx(ca1.ca))
    try:
        assert c.sock.version() == "TLSv1.3"
        c.assert_usable()
    finally:
        c.close()


def test_tls12_client_accepted_by_default(start_server, ca1):
    srv = start_server()
    c = tls_connect(srv.port, client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2))
    try:
        assert c.sock.version() == "TLSv1.2"
        c.assert_usable()
    finally:
        c.close()


# ------------------------------------------------------------------ (f) resumption


def _resume(srv, ctx):
    """Full handshake + one command, then a reconnect offering that session."""
    c = tls_connect(srv.port, ctx)
    try:
        assert not c.sock.session_reused
        assert c.cmd(b"version").startswith(b"VERSION ")  # TLS 1.3 tickets come after
        sess = c.sock.session
    finally:
        c.close()
    assert sess is not None
    base = srv.stat("ssl_resumed_sessions")
    c = tls_connect(srv.port, ctx, session=sess)
    try:
        reused = c.sock.session_reused
        c.assert_usable()
    finally:
        c.close()
    # The server counts a resumption before it serves the connection's first command, so
    # after assert_usable the count is final: read once, no wait.
    return reused, base, srv.stat("ssl_resumed_sessions")


def test_resumption_tls13(start_server, ca1):
    srv = start_server()
    ctx = client_ctx(ca1.ca, minv=ssl.TLSVersion.TLSv1_3)
    new_before = srv.stat("ssl_new_sessions")
    reused, base, after = _resume(srv, ctx)
    assert reused is True
    assert after == base + 1
    assert srv.stat("ssl_new_sessions") > new_before


def test_resumption_tls12_session_cache(start_server, ca1):
    srv = start_server(opts={"ssl_session_cache": ""})
    # no ticket: resumption by session ID, which needs the server's session cache
    ctx = client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2, no_ticket=True)
    reused, base, after = _resume(srv, ctx)
    assert reused is True
    assert after == base + 1


def test_no_tls12_session_id_resumption_without_cache(start_server, ca1):
    srv = start_server()
    ctx = client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2, no_ticket=True)
    reused, base, after = _resume(srv, ctx)
    assert reused is False
    assert after == base


# ------------------------------------------------------------------ (g, h) cert reload


def _switchable_server(start_server, ca1, tmp_path):
    """A server whose chain/key files (copies of CA1's) the test may overwrite."""
    d = tmp_path / "live"
    d.mkdir()
    for f in ("server.pem", "server.key"):
        shutil.copy(ca1.dir / f, d / f)
    srv = start_server(opts={"ssl_chain_cert": str(d / "server.pem"),
                             "ssl_key": str(d / "server.key")})
    return srv, d


def _install(src_certs, d):
    # write to a temp name and rename, so a reload never sees a half-written file
    for f in ("server.pem", "server.key"):
        shutil.copy(src_certs.dir / f, d / (f + ".tmp"))
        os.replace(d / (f + ".tmp"), d / f)


def test_refresh_certs(start_server, ca1, ca2, tmp_path):
    srv, d = _switchable_server(start_server, ca1, tmp_path)
    only1, only2 = client_ctx(ca1.ca), client_ctx(ca2.ca)
    x = tls_connect(srv.port, only1)
    try:
        x.assert_usable(b"x1")
        # Let time_since_server_cert_refresh grow (time passing is the point), so that it
        # is seen to count from the refresh below and not from startup (bounded).
        t = srv.wait_stat("time_since_server_cert_refresh", lambda v: v >= 2)
        assert t >= 2

        _install(ca2, d)
        sent = int(time.time())  # the server's clock too: it counts whole Unix seconds
        assert x.cmd(b"refresh_certs") == b"OK"
        srv.stats_ctx = only2
        since = srv.stat("time_since_server_cert_refresh")
        # Counted from the refresh, however long the stats call took; counted from startup
        # it would be at least t more.
        assert since <= int(time.time()) - sent, (since, t)
        assert_works(tls_attempt(srv.port, only2))
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_connect(srv.port, only1)
        x.assert_usable(b"x2")  # the old connection is unaffected

        (d / "server.pem").write_bytes(b"this is not a certificate\n")
        reply = x.cmd(b"refresh_certs")
        assert reply.startswith(b"SERVER_ERROR "), reply
        assert_works(tls_attempt(srv.port, only2))  # old (CA2) cert kept
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_connect(srv.port, only1)
        x.assert_usable(b"x3")
    finally:
        x.close()
    srv.assert_alive()


def test_reload_keeps_the_old_certificate_when_expired_or_mismatched(
        start_server, ca1, ca2, tmp_path):
    """refresh_certs and SIGHUP refuse an expired certificate and a certificate whose key is
    not the one given; the old certificate keeps serving, new connections and old."""
    srv, d = _switchable_server(start_server, ca1, tmp_path)
    only1 = client_ctx(ca1.ca)
    gen = tmp_path / "expired"
    gen.mkdir()
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(gen / "server.key"), "-out", str(gen / "r.csr"),
         "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=30)
    (gen / "ext").write_text("subjectAltName=DNS:localhost\n")  # makes it X.509 v3
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(gen / "r.csr"), "-signkey",
         str(gen / "server.key"), "-days", "-1", "-extfile", str(gen / "ext"),
         "-out", str(gen / "server.pem")],
        check=True, capture_output=True, timeout=30)
    x = tls_connect(srv.port, only1)
    try:
        x.assert_usable(b"r1")
        for f in ("server.pem", "server.key"):
            shutil.copy(gen / f, d / f)
        reply = x.cmd(b"refresh_certs")
        assert reply.startswith(b"SERVER_ERROR ") and b"expired" in reply, reply
        assert_works(tls_attempt(srv.port, only1))

        shutil.copy(ca2.dir / "server.pem", d / "server.pem")
        shutil.copy(ca1.dir / "server.key", d / "server.key")
        reply = x.cmd(b"refresh_certs")
        assert reply.startswith(b"SERVER_ERROR "), reply
        assert_works(tls_attempt(srv.port, only1))

        os.kill(srv.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while "SIGHUP certificate reload failed" not in srv.output():
            assert time.monotonic() < deadline, srv.output()
            time.sleep(0.05)
        assert_works(tls_attempt(srv.port, only1))
        x.assert_usable(b"r2")
    finally:
        x.close()
    srv.assert_alive()


def test_sighup_reload(start_server, ca1, ca2, tmp_path):
    srv, d = _switchable_server(start_server, ca1, tmp_path)
    only1, only2 = client_ctx(ca1.ca), client_ctx(ca2.ca)
    x = tls_connect(srv.port, only1)
    try:
        x.assert_usable(b"x1")
        assert_works(tls_attempt(srv.port, only1))
        _install(ca2, d)
        os.kill(srv.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        result = None
        while time.monotonic() < deadline:
            result = tls_attempt(srv.port, only2)
            if isinstance(result, bytes):
                break
            time.sleep(0.05)
        assert_works(result)
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_connect(srv.port, only1)
        x.assert_usable(b"x2")

    finally:
        x.close()
    srv.assert_alive()


def test_client_trusting_both_dev_cas(start_server, ca1, ca2):
    """A client that trusts two `tessera certs` CAs (e.g. old + new during a CA
    rotation) must verify servers of either. With identical CA subject names and no
    authority key identifier in the leaf, OpenSSL may pick the wrong CA and fail."""
    for certs in (ca1, ca2):
        srv = start_server(certs=certs)
        for order in ((ca1.ca, ca2.ca), (ca2.ca, ca1.ca)):
            assert_works(tls_attempt(srv.port, client_ctx(*order)))


# ------------------------------------------------------------------ (i) listener prefixes


def test_permissive_listener(start_server, ca1):
    srv = start_server(listen=["permissive:127.0.0.1:0"])
    base = srv.stat("ssl_plaintext_connections")
    plain = tcp_connect(srv.port)
    try:
        assert plain.cmd(b"version").startswith(b"VERSION ")
        plain.assert_usable(b"plain")
        got = srv.wait_stat("ssl_plaintext_connections", lambda v: v > base)
        assert got == base + 1
        tls = tls_connect(srv.port, client_ctx(ca1.ca))
        try:
            assert tls.sock.version() is not None
            assert tls.get(b"plain") == b"ok-plain"
            tls.assert_usable(b"tls")
        finally:
            tls.close()
        assert plain.get(b"tls") == b"ok-tls"
    finally:
        plain.close()
    assert srv.stat("ssl_plaintext_connections") == base + 1  # TLS ones not counted


def test_notls_listener_and_plaintext_on_tls_port(start_server, ca1):
    p_plain, p_tls = free_ports(2)
    srv = start_server(listen=[f"notls:127.0.0.1:{p_plain}", f"127.0.0.1:{p_tls}"])
    assert sorted(srv.ports) == sorted([p_plain, p_tls])
    srv.stats_port = p_tls

    plain = tcp_connect(p_plain)
    try:
        plain.assert_usable(b"np")
    finally:
        plain.close()

    base = srv.stat("ssl_handshake_errors")
    s = socket.create_connection(("127.0.0.1", p_tls), timeout=TIMEOUT)
    data = b""
    closed = False
    try:
        s.sendall(b"set bad 0 0 1\r\nx\r\nget bad\r\n")
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    except TimeoutError:
        pass
    finally:
        s.close()
    assert b"STORED" not in data and b"VALUE" not in data, data
    assert closed, f"server kept the connection open {TIMEOUT} s after plaintext on a TLS port"
    got = srv.wait_stat("ssl_handshake_errors", lambda v: v > base)
    assert got == base + 1
    # and it was not stored
    c = tls_connect(p_tls, client_ctx(ca1.ca))
    try:
        assert c.get(b"bad") is None
    finally:
        c.close()


# ------------------------------------------------------------------ (j) startup errors


def _startup_cases(ca):
    cc = f"ssl_chain_cert={ca.server},ssl_key={ca.server_key}"
    missing = str(ca.dir / "no-such-cert.pem")
    return {
        "missing_cert": (["-o", f"ssl_chain_cert={missing},ssl_key={ca.server_key}"], missing),
        "unknown_cipher": (["-o", cc + ",ssl_ciphers=FOO"], "FOO"),
        "tlsv1.1": (["-o", cc + ",ssl_min_version=tlsv1.1"], "tlsv1.1"),
        "mtls_without_ca": (["-o", cc, "-l", "mtls:127.0.0.1:0"], "ssl_ca_cert"),
    }


def startup_error(bin_path, *args):
    """Runs tessera -Z with args; it must exit non-zero with one stderr line, returned."""
    port = free_ports(1)[0]
    r = subprocess.run(
        [bin_path, "-U", "0", "-t", "1", "-p", str(port), "-l", "127.0.0.1", "-Z", *args],
        capture_output=True, text=True, timeout=10,  # a server that starts fails here
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tessera: "), lines
    return lines[0]


@pytest.mark.parametrize("case", ["missing_cert", "unknown_cipher", "tlsv1.1", "mtls_without_ca"])
def test_startup_errors(bin_path, ca1, case):
    args, must_mention = _startup_cases(ca1)[case]
    line = startup_error(bin_path, *args)
    assert must_mention in line, line


# ------------------------------------------------------------------ (k) handshake deadline


def test_handshake_timeout(start_server, ca1):
    """A connection that never starts its handshake is closed, and counted as a handshake
    timeout (which no other close is); a normal client is served meanwhile. The deadline
    (3 s) leaves that client's own handshake time on a busy machine."""
    srv = start_server(opts={"ssl_handshake_timeout": "3"})
    base = srv.stat("ssl_handshake_timeouts")
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    try:
        # a normal client is served while the idle one waits in the handshake queue
        c = tls_connect(srv.port, client_ctx(ca1.ca))
        try:
            c.assert_usable()
        finally:
            c.close()
        # The close must be a real one: EOF or a reset, after at most an alert.
        idle.settimeout(WAIT)
        try:
            for _ in range(100):
                if not idle.recv(65536):
                    break
            else:
                pytest.fail("the server kept sending to a connection that sent nothing")
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"the server kept a connection that sent nothing open {WAIT} s past "
                        "its 3 s handshake deadline")
    finally:
        idle.close()
    got = srv.wait_stat("ssl_handshake_timeouts", lambda v: v > base)
    assert got == base + 1


def test_sigterm_closes_tls_sessions_with_close_notify(start_server, ca1):
    """SIGTERM: an idle TLS connection gets close_notify (not a bare TCP close), one with a
    request in progress gets its reply first, and the server exits 0."""
    srv = start_server(threads=2, opts={"shutdown_timeout": "30"}, plain_stats=True)

    def connect():
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
        # suppress_ragged_eofs=False: a TCP close without close_notify raises SSLEOFError
        return Conn(client_ctx(ca1.ca).wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False))

    idle, mid = connect(), connect()
    try:
        idle.assert_usable(b"idle")
        mid.assert_usable(b"mid")
        mark = srv.read_mark()
        partial = b"set k 0 0 4\r\nab"
        mid.send(partial)
        # SIGTERM only once the server holds the partial request; before that the
        # connection is idle and gets close_notify at once.
        srv.wait_read(mark, len(partial))
        srv.proc.send_signal(signal.SIGTERM)
        assert idle.sock.recv(100) == b""  # close_notify
        # The rest of the request, and one more in the same write: both are answered
        # (a request sent after the replies would find the connection closed).
        mid.send(b"cd\r\nget k\r\n")
        assert mid.readline() == b"STORED"
        assert mid.readline() == b"VALUE k 0 4"
        assert mid.readline() == b"abcd"
        assert mid.readline() == b"END"
        with pytest.raises(ServerClosed):  # close_notify after the last reply
            mid.readline()
        assert srv.proc.wait(timeout=10) == 0
    finally:
        idle.close()
        mid.close()
    out = srv.output()
    assert "SIGTERM: shutting down" in out and "tessera: shut down" in out, out


# ------------------------------------------------------------------ (l) stats settings


def test_stats_settings_defaults(start_server, ca1):
    srv = start_server()
    s = srv.stats("settings")
    want = {
        "ssl_enabled": "yes",
        "ssl_chain_cert": ca1.server,
        "ssl_key": ca1.server_key,
        "ssl_verify_mode": "0",
        "ssl_ca_cert": "NULL",
        "ssl_wbuf_size": "16384",
        "ssl_session_cache": "no",
        "ssl_min_version": "tlsv1.2",
        "ssl_kernel_tls": "auto",
        "ssl_ktls_record_limit": "0",
    }
    assert {k: s.get(k) for k in want} == want
    for k in ("ssl_keyformat", "ssl_ciphers", "ssl_handshake_timeout"):
        assert k in s, k
    general = srv.stats()
    for k in ("ssl_handshakes", "ssl_handshake_errors", "ssl_handshake_timeouts",
              "ssl_proto_errors", "ssl_resumed_sessions", "ssl_new_sessions",
              "ssl_verify_failures", "ssl_connections", "ssl_plaintext_connections",
              "ssl_ktls_connections", "ssl_userspace_connections", "ssl_ktls_fallbacks",
              "time_since_server_cert_refresh"):
        assert k in general, k
    assert int(general["ssl_connections"]) >= 1  # the stats connection itself
    assert int(general["ssl_handshakes"]) >= 2


def test_stats_settings_configured(start_server, ca1):
    ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384"
    srv = start_server(opts={
        "ssl_ca_cert": ca1.ca,
        "ssl_verify_mode": "1",
        "ssl_wbuf_size": "32",
        "ssl_session_cache": "",
        "ssl_ciphers": ciphers,
        "ssl_handshake_timeout": "7",
    })
    s = srv.stats("settings")
    want = {
        "ssl_enabled": "yes",
        "ssl_verify_mode": "1",
        "ssl_ca_cert": ca1.ca,
        "ssl_wbuf_size": "32768",
        "ssl_session_cache": "yes",
        "ssl_ciphers": ciphers,
        "ssl_min_version": "tlsv1.2",
        "ssl_handshake_timeout": "7",
    }
    assert {k: s.get(k) for k in want} == want
    # the cipher list is applied, not just echoed
    c = tls_connect(srv.port, client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2))
    try:
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    finally:
        c.close()
    c = tls_connect(srv.port, client_ctx(ca1.ca, minv=ssl.TLSVersion.TLSv1_3))
    try:
        assert c.sock.cipher()[0] == "TLS_AES_256_GCM_SHA384"
    finally:
        c.close()


# ------------------------------------------------------------------ RSA keys, chains, DER, config files


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"


@pytest.fixture(scope="session")
def rsa_chain(tmp_path_factory):
    """An RSA root CA, an RSA intermediate CA and an RSA leaf (SAN localhost, 127.0.0.1),
    made with openssl; chain.pem = leaf + intermediate, as servers are usually given."""
    d = tmp_path_factory.mktemp("rsa")
    ext = d / "ext.cnf"
    ext.write_text(
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    # root (self-signed)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key",
             "-out", "root.pem", "-subj", "/CN=tessera test RSA root", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    # intermediate
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "inter.key", "-out", "inter.csr",
             "-subj", "/CN=tessera test RSA intermediate", cwd=d)
    _openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
             "-CAcreateserial", "-out", "inter.pem", "-days", "2", "-extfile", str(ext),
             "-extensions", "ca", cwd=d)
    # leaf, with a traditional PKCS#1 RSA key ("BEGIN RSA PRIVATE KEY")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
             "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "inter.pem", "-CAkey", "inter.key",
             "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", str(ext),
             "-extensions", "leaf", cwd=d)
    _openssl("rsa", "-in", "leaf.key", "-out", "leaf.pkcs1.key", "-traditional", cwd=d)
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-outform", "DER",
             "-out", "leaf.der", cwd=d)
    (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "inter.pem").read_text())
    return d


@pytest.mark.parametrize("key,keyformat", [("leaf.pkcs1.key", None), ("leaf.key", None), ("leaf.der", "2")])
def test_rsa_key_with_intermediate_chain(start_server, rsa_chain, key, keyformat):
    """RSA keys (PKCS#1 and PKCS#8 PEM, PKCS#8 DER) with a chain file holding the
    intermediate: a client that trusts only the root verifies the server."""
    opts = {"ssl_chain_cert": str(rsa_chain / "chain.pem"), "ssl_key": str(rsa_chain / key)}
    if keyformat:
        opts["ssl_keyformat"] = keyformat
    srv = start_server(opts=opts, extra=["-o", "ssl_min_version=tlsv1.2"])
    ctx = client_ctx(str(rsa_chain / "root.pem"))
    srv.stats_ctx = ctx
    c = tls_connect(srv.port, ctx)
    try:
        assert c.set(b"rsa", b"value") == b"STORED"
        assert c.get(b"rsa") == b"value"
        cert = c.sock.getpeercert()
        assert dict(x[0] for x in cert["subject"])["commonName"] == "localhost"
    finally:
        c.close()
    # without the intermediate in the chain file the same client cannot verify
    bare = start_server(opts={"ssl_chain_cert": str(rsa_chain / "leaf.pem"),
                              "ssl_key": str(rsa_chain / "leaf.key")})
    assert_refused(tls_attempt(bare.port, ctx))


def test_example_config_files(bin_path, tmp_path):
    """config/tls.toml and config/mtls.toml work as shipped: run from a directory where
    `tessera certs --out certs` was run (ports overridden so the test binds free ones)."""
    make_certs(tmp_path / "certs")
    for name, needs_client_cert in (("tls.toml", False), ("mtls.toml", True)):
        port, plain_port = free_ports(2)
        listen = f"mtls:127.0.0.1:{port}" if needs_client_cert else f"127.0.0.1:{port},notls:127.0.0.1:{plain_port}"
        args = [bin_path, "--config", str(REPO / "config" / name), "-v", "-t", "1", "-l", listen]
        proc = subprocess.Popen(args, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            line = b""
            while b"listening on" not in line and time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    pytest.fail(f"{name}: tessera exited: {proc.returncode}")
            assert b"listening on" in line, f"{name}: no listening line"
            certs = Certs(tmp_path / "certs")
            if needs_client_cert:
                assert_refused(tls_attempt(port, client_ctx(certs.ca)))
                ctx = client_ctx(certs.ca, cert=certs.client, key=certs.client_key)
                assert_works(tls_attempt(port, ctx))
                # mtls.toml sets min_version tlsv1.3
                old = client_ctx(certs.ca, cert=certs.client, key=certs.client_key,
                                 maxv=ssl.TLSVersion.TLSv1_2)
                assert_refused(tls_attempt(port, old))
            else:
                assert_works(tls_attempt(port, client_ctx(certs.ca)))
                p = tcp_connect(plain_port)
                try:
                    assert p.set(b"k", b"plain") == b"STORED"
                finally:
                    p.close()
        finally:
            stop_process(proc)


# ------------------------------------------------------------------ (m) kernel TLS path
# kTLS itself is exercised in a VM (tools/ktls-vm/run.sh); here: the choice of path, its
# log line and its stats, on whatever kernel runs the tests.


def _ktls_line(srv):
    lines = [l for l in srv.output().splitlines() if l.startswith("tessera: kernel TLS")]
    assert len(lines) == 1, srv.output()  # said once at startup
    return lines[0]


def _tls_labels(srv):
    return [v for k, v in srv.stats("conns").items() if k.endswith(":tls")]


def test_ktls_auto_reports_the_path_taken(start_server, ca1):
    srv = start_server()
    line = _ktls_line(srv)
    assert "ssl_kernel_tls=auto" in line, line
    assert srv.stats("settings")["ssl_kernel_tls"] == "auto"
    c = tls_connect(srv.port, client_ctx(ca1.ca))
    try:
        c.assert_usable()
        labels = _tls_labels(srv)
        s = srv.stats()
        if "not available" in line:
            # Every TLS connection so far (3 stats connections included) fell back.
            assert "TLS records stay in rustls" in line, line
            assert int(s["ssl_ktls_connections"]) == 0
            assert int(s["ssl_userspace_connections"]) == 2  # c and this stats connection
            assert int(s["ssl_ktls_fallbacks"]) == int(s["ssl_handshakes"]) >= 3
            assert labels and all(l.startswith("userspace/TLSv1.3/TLS13_") for l in labels), labels
        else:
            assert int(s["ssl_ktls_connections"]) == 2, s
            assert int(s["ssl_userspace_connections"]) == 0, s
            assert labels and all(l.startswith("ktls/") for l in labels), labels
        assert int(s["ssl_connections"]) == 2
    finally:
        c.close()
    assert srv.wait_stat("ssl_connections", lambda v: v == 1) == 1  # only the stats one


def test_ktls_off_stays_in_rustls(start_server, ca1):
    srv = start_server(opts={"ssl_kernel_tls": "off"})
    assert "off" in _ktls_line(srv)
    c = tls_connect(srv.port, client_ctx(ca1.ca, maxv=ssl.TLSVersion.TLSv1_2))
    try:
        c.assert_usable()
        s = srv.stats()
        assert int(s["ssl_ktls_fallbacks"]) == 0  # off is a choice, not a fallback
        assert int(s["ssl_ktls_connections"]) == 0
        assert int(s["ssl_userspace_connections"]) == 2
        assert any(l.startswith("userspace/TLSv1.2/TLS_ECDHE_") for l in _tls_labels(srv))
        assert srv.stats("settings")["ssl_kernel_tls"] == "off"
    finally:
        c.close()


def test_ktls_on(bin_path, start_server, ca1):
    """on: refuses to start where the kernel has no kTLS (one line saying so); serves
    everything through kTLS where it has."""
    probe = start_server()
    available = "not available" not in _ktls_line(probe)
    cc = f"ssl_chain_cert={ca1.server},ssl_key={ca1.server_key},ssl_kernel_tls=on"
    if not available:
        line = startup_error(bin_path, "-o", cc)
        assert "ssl_kernel_tls=on" in line and "TCP_ULP" in line, line
        assert "ssl_kernel_tls=auto" in line, line  # says what to do instead
    else:
        srv = start_server(opts={"ssl_kernel_tls": "on"})
        c = tls_connect(srv.port, client_ctx(ca1.ca))
        try:
            c.assert_usable()
            assert int(srv.stats()["ssl_ktls_connections"]) == 2
        finally:
            c.close()


@pytest.mark.parametrize("opt,value", [
    ("ssl_kernel_tls", "maybe"),
    ("ssl_ktls_record_limit", "3"),
    ("ssl_ktls_record_limit", "many"),
])
def test_ktls_bad_options(bin_path, ca1, opt, value):
    cc = f"ssl_chain_cert={ca1.server},ssl_key={ca1.server_key},{opt}={value}"
    line = startup_error(bin_path, "-o", cc)
    assert f"{opt}: '{value}'" in line, line
