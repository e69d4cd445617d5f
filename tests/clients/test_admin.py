"""The HTTP admin listener (-o admin_listen): Prometheus metrics and the health check.

A TLS tessera with two executors and `-o admin_listen=0` (127.0.0.1, a free port read from
its log line). Traffic of known size goes through a TLS pymemcache client, then /metrics
is parsed with prometheus_client's own text-format parser (so the page is valid
exposition format) and checked against what was sent and against `stats`:

  - every numeric `stats` value is a metric, and the counters ignore `stats reset`;
  - per-shard counts add up to the totals;
  - the service-time histogram counts exactly the commands sent, per class, with
    cumulative buckets;
  - the TLS handshake counters and the kTLS state agree with `stats`;
  - /health is 200 while the executors run; other paths, methods and junk get 404, 405,
    400; HEAD has no body;
  - the listener is off by default, and a bad or taken address is a startup error.

Processes, timeouts and teardown as in test_cluster.py (whose helpers this reuses).
"""

import http.client
import math
import re
import socket
import ssl
import subprocess
import time

import pytest
from pymemcache.client.base import Client

from test_cluster import (  # noqa: F401  (procs: a fixture)
    START_TIMEOUT,
    TIMEOUT,
    Tessera,
    procs,
    tessera_bin,
)

N_SET, N_GET, N_DELETE, N_INCR = 200, 300, 20, 10


def parser():
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError as e:
        pytest.fail(f"prometheus_client is needed ({e}): pip install prometheus_client "
                    "(tools/test.sh installs it)")
    return text_string_to_metric_families


def admin_port(server):
    """The admin port from the startup line, waiting for it (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        m = re.search(r"admin listener on http://127\.0\.0\.1:(\d+) ", server.output())
        if m:
            return int(m.group(1))
        server.check_running()
        time.sleep(0.02)
    pytest.fail(f"no admin listener line:\n{server.output()}")


def request(port, method, path, raw=None):
    """(status, headers, body) of one request; `raw` sends those bytes instead."""
    if raw is not None:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            data = b""
            for _ in range(1000):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, {}, data.split(b"\r\n\r\n", 1)[1]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def raw_command(client, line):
    """One command whose reply is a single line (pymemcache's stats() cannot read RESET)."""
    return client.raw_command(line, end_tokens=b"\r\n").rstrip(b"\r\n")


def scrape(port):
    status, headers, body = request(port, "GET", "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in parser()(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


@pytest.fixture
def tls_server(procs, tmp_path):
    certs = tmp_path / "certs"
    r = subprocess.run([tessera_bin(), "certs", "--out", str(certs)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    srv = Tessera("tls", tmp_path / "tls.log", [
        "-t", "2", "-Z", "-o",
        f"ssl_chain_cert={certs}/server.pem,ssl_key={certs}/server.key,admin_listen=0"])
    procs.append(srv)
    srv.wait_port()
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    client = Client(("127.0.0.1", srv.port), tls_context=ctx, connect_timeout=TIMEOUT,
                    timeout=TIMEOUT, default_noreply=False)
    yield srv, admin_port(srv), client
    client.close()


def test_metrics_match_the_traffic(tls_server):
    srv, port, client = tls_server
    for i in range(N_SET):
        assert client.set(f"k{i}", b"v" * (i % 50 + 1))
    for i in range(N_GET):
        client.get(f"k{i}")  # 200 hits, 100 misses
    for i in range(N_DELETE):
        assert client.delete(f"k{i}")
    assert client.set("n", b"0")
    for _ in range(N_INCR):
        client.incr("n", 1)
    stats = {k.decode(): v for k, v in client.stats().items()}
    assert raw_command(client, b"stats reset") == b"RESET"

    m = scrape(port)
    # Every numeric `stats` value is there, as a gauge or a counter.
    for name, v in stats.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert (f"tessera_{name}", ()) in m or (f"tessera_{name}_total", ()) in m, name
    # Counters ignore `stats reset`.
    assert value(m, "tessera_cmd_get_total") == N_GET
    assert value(m, "tessera_get_hits_total") == N_SET - 0  # k0..k199 were all set
    assert value(m, "tessera_get_misses_total") == N_GET - N_SET
    assert value(m, "tessera_cmd_set_total") == N_SET + 1
    assert value(m, "tessera_delete_hits_total") == N_DELETE
    assert value(m, "tessera_incr_hits_total") == N_INCR
    assert value(m, "tessera_threads") == 2
    # Per shard adds up to the totals; both shards had keys.
    for name in ("cmd_get", "cmd_set", "get_hits"):
        per = [value(m, f"tessera_shard_{name}_total", shard=str(i)) for i in range(2)]
        assert sum(per) == value(m, f"tessera_{name}_total"), name
    assert all(value(m, "tessera_shard_curr_items", shard=str(i)) > 0 for i in range(2))
    # Service time: one observation per command, cumulative buckets.
    h = "tessera_command_duration_seconds"
    for cmd, n in (("get", N_GET), ("set", N_SET + 1), ("delete", N_DELETE),
                   ("incr_decr", N_INCR), ("touch", 0)):
        assert value(m, f"{h}_count", cmd=cmd) == n, cmd
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in m.items()
                          if k[0] == f"{h}_bucket" and dict(k[1])["cmd"] == cmd))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == n, (cmd, buckets)
        assert buckets[-1][0] == float("inf")
        assert (value(m, f"{h}_sum", cmd=cmd) > 0) == (n > 0)
    assert value(m, f"{h}_count", cmd="other") >= 1  # stats, stats reset
    # TLS: the handshake counted; the kTLS state agrees with stats.
    assert value(m, "tessera_ssl_handshakes_total") >= 1
    assert value(m, "tessera_ssl_connections") == stats["ssl_connections"]
    ktls = value(m, "tessera_tls_kernel_available")
    assert ktls in (0, 1)
    if ktls == 0:
        assert value(m, "tessera_ssl_ktls_connections") == 0
        assert value(m, "tessera_ssl_userspace_connections") == stats["ssl_connections"]
    infos = [dict(k[1]) for k in m if k[0] == "tessera_tls_info"]
    assert len(infos) == 1 and infos[0]["kernel_tls"] == "auto", infos
    # Liveness.
    assert value(m, "tessera_up") == 1
    # Each executor has beaten: an age, not +Inf (never ran its loop). How old it may get
    # is the server's own health rule, which tessera_up above already reflects.
    for i in range(2):
        age = value(m, "tessera_executor_heartbeat_age_seconds", executor=str(i))
        assert math.isfinite(age) and age >= 0, (i, age)


def wait_healthy(port):
    """/health's answer once it is 200, or its last answer after START_TIMEOUT. Right after
    the listening line the executors may not have run their first loop: until then /health
    is 503 "executor N has not started", and nothing else."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        status, _, body = request(port, "GET", "/health")
        if status == 200 or time.monotonic() > deadline:
            return status, body
        assert status == 503 and re.fullmatch(
            rb"unhealthy: executor \d has not started(; executor \d has not started)?\n",
            body), body
        time.sleep(0.02)


def test_endpoints(tls_server):
    srv, port, _ = tls_server
    assert wait_healthy(port) == (200, b"ok: 2 executor(s) running\n")
    status, headers, body = request(port, "HEAD", "/metrics")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    assert request(port, "GET", "/nope")[0] == 404
    status, headers, _ = request(port, "POST", "/metrics")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert request(port, None, None, raw=b"\x16\x03\x01junk\r\n\r\n")[0] == 400
    assert request(port, None, None, raw=b"GET /metrics\r\n")[0] == 400
    srv.check_running()


def test_off_by_default_and_startup_errors(procs, tmp_path):
    plain = Tessera("plain", tmp_path / "plain.log")
    procs.append(plain)
    plain.wait_port()
    assert "admin listener" not in plain.output()
    c = Client(("127.0.0.1", plain.port), connect_timeout=TIMEOUT, timeout=TIMEOUT)
    try:
        assert c.stats("settings")[b"admin_listen"] == b"off"
    finally:
        c.close()

    def start_fails(*args):
        r = subprocess.run([tessera_bin(), "-p", "0", "-l", "127.0.0.1", "-t", "1", *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        return lines[0]

    assert "admin_listen: 'localhost:9150' is not PORT" in \
        start_fails("-o", "admin_listen=localhost:9150")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert start_fails("-o", f"admin_listen={busy}") == \
            f"tessera: failed to listen on 127.0.0.1:{busy}: address already in use"
