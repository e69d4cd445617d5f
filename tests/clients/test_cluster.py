"""Cluster tests: one key space sharded with ketama across three tessera instances.

  - twemproxy (nutcracker, Debian's `nutcracker` package) in front of three instances,
    `distribution: ketama`, `hash: md5`, named servers; the client is pymemcache.
  - pylibmc (libmemcached) hashing keys itself with `ketama_weighted`, talking to the three
    instances directly.
  - both at once: nutcracker without server names and pylibmc share one continuum, so keys
    written by one are found by the other.

Each test checks that every key reads back through the proxy or client, that every key is
on exactly one instance (a direct `get` to each), that each instance holds a fair share,
and that each key is on the instance an independent Python ketama (below) predicts: the
placement is twemproxy's and libmemcached's, not merely some partition of the keys.
Multi-gets, deletes and incr/decr go through the proxy/client too.

These tests start their own processes (like test_tls.py) on 127.0.0.1: three tessera with
-p 0 (the port is read from the listening line) and nutcracker on free ports.
Environment:
  TESSERA_BIN               path of the tessera binary (default: target/release/tessera)
  TESSERA_CLUSTER_REQUIRED  if 1, a missing nutcracker or pylibmc fails the test instead
                            of skipping it (tests/clients/run_clients.sh sets it: tools/test.sh
                            installs both)

Every socket has a timeout, every wait is bounded, and every process started here is
stopped (SIGTERM, then SIGKILL) at fixture teardown, also when a test fails.
"""

import bisect
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest
from pymemcache.client.base import Client

# The process helpers test_tls.py defines (binary path, free ports, started processes).
from test_tls import (
    START_TIMEOUT,
    TIMEOUT,
    Proc,
    assert_no_crash,
    free_ports,
    tessera_bin,
    wait_listening,
)

N_KEYS = 3000
MIN_SHARE = 0.15  # of the keys, on each of the three instances (ketama gives ~1/3 each)
CHUNK = 100  # keys per multi-get


# ------------------------------------------------------------------ processes


def required():
    return os.environ.get("TESSERA_CLUSTER_REQUIRED") == "1"


def missing(what):
    """Skips, or fails under TESSERA_CLUSTER_REQUIRED=1."""
    if required():
        pytest.fail(f"{what} (TESSERA_CLUSTER_REQUIRED=1: tools/test.sh installs it)")
    pytest.skip(what)


class Tessera(Proc):
    def __init__(self, name, log_path, extra=()):
        super().__init__(name, [tessera_bin(), "-p", "0", "-l", "127.0.0.1", "-U", "0",
                                "-t", "1", "-m", "16", "-v", *extra], log_path)
        self.port = None

    def wait_port(self):
        """Reads the port (-p 0) from the listening line, waiting for it (bounded)."""
        self.port = wait_listening(self)[0]


def wait_accepting(proc, port):
    """Waits (bounded) until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        proc.check_running()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{proc.name} did not accept on 127.0.0.1:{port} in {START_TIMEOUT} s:\n"
                f"{proc.output()}")


@pytest.fixture
def procs():
    """Every process a test starts is appended here and stopped at teardown."""
    started = []
    yield started
    errors = []
    for p in reversed(started):  # nutcracker before the instances behind it
        try:
            p.stop()
        except Exception as e:  # stop the others all the same
            errors.append(f"{p.name}: {e!r}")
    assert not errors, errors
    assert_no_crash(started)


@pytest.fixture
def backends(procs, tmp_path):
    path = tessera_bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"tessera binary {path} not found or not executable (set TESSERA_BIN)")
    servers = []
    for i in range(3):
        srv = Tessera(f"tessera{i + 1}", tmp_path / f"tessera{i + 1}.log")
        procs.append(srv)  # before waiting: a failed start is stopped too
        srv.wait_port()
        servers.append(srv)
    return servers


@pytest.fixture
def clients():
    """clients(port): a pymemcache client for 127.0.0.1:port (one per port, reused),
    all closed at teardown."""
    made = {}

    def factory(port):
        if port not in made:
            made[port] = Client(("127.0.0.1", port), connect_timeout=TIMEOUT,
                                timeout=TIMEOUT, default_noreply=False)
        return made[port]

    yield factory
    for c in made.values():
        c.close()


def nutcracker_bin():
    return shutil.which("nutcracker") or next(
        (p for p in ("/usr/sbin/nutcracker", "/usr/local/sbin/nutcracker")
         if os.access(p, os.X_OK)), None)


@pytest.fixture
def start_nutcracker(procs, tmp_path):
    """start_nutcracker(backends, named=True) -> proxy port. Writes the YAML config to
    tmp_path, checks it with `nutcracker -t`, starts nutcracker on free loopback ports
    (its stats listener too) and waits until it accepts."""
    exe = nutcracker_bin()
    if exe is None:
        missing("nutcracker (twemproxy) not found: apt-get install nutcracker")

    def start(backends, named=True):
        port, stats_port = free_ports(2)
        servers = "".join(
            f"    - 127.0.0.1:{b.port}:1" + (f" {b.name}" if named else "") + "\n"
            for b in backends)
        conf = tmp_path / f"nutcracker-{port}.yml"
        conf.write_text(
            "tessera:\n"
            f"  listen: 127.0.0.1:{port}\n"
            "  hash: md5\n"
            "  distribution: ketama\n"
            "  auto_eject_hosts: false\n"
            "  timeout: 3000\n"
            "  server_connections: 1\n"
            "  servers:\n" + servers)
        r = subprocess.run([exe, "-t", "-c", str(conf)], capture_output=True, text=True,
                           timeout=30)
        out = r.stdout + r.stderr
        assert r.returncode == 0 and "syntax is ok" in out, \
            f"nutcracker -t rejected {conf}:\n{conf.read_text()}\n{out}"
        proc = Proc("nutcracker", [exe, "-c", conf, "-s", stats_port, "-a", "127.0.0.1"],
                    tmp_path / f"nutcracker-{port}.log")
        procs.append(proc)
        wait_accepting(proc, port)
        return port

    return start


# ------------------------------------------------------------------ ketama, independently


def md5_words(data):
    """The md5 digest of data as four little-endian 32-bit words (libketama's and
    twemproxy's ketama_hash(..., alignment 0..3); word 0 is also their md5 key hash)."""
    return struct.unpack("<4I", hashlib.md5(data).digest())


class Continuum:
    """libketama's continuum: for each server (weight 1, all equal), 40 md5 digests of
    "LABEL-0" .. "LABEL-39", 4 points per digest (160 points a server), sorted; a key
    goes to the first point at or after md5(key)'s first word, wrapping around.

    LABEL is what the implementation hashes: twemproxy the server's name when the config
    gives one, else "host:port" ("host" alone for port 11211); libmemcached "host:port"
    ("host" for 11211). Equal weights give each server exactly 160 points in both.
    Where points of different servers share a value (a 32-bit collision, ~3e-5 per
    continuum), the C code's qsort decides which comes first: keys that land there are
    reported as undecidable (None) rather than guessed."""

    def __init__(self, labels):
        points = []
        for idx, label in enumerate(labels):
            for i in range(40):
                for value in md5_words(f"{label}-{i}".encode()):
                    points.append((value, idx))
        points.sort()
        self.values = [v for v, _ in points]
        self.owners = [o for _, o in points]
        assert len(self.values) == 160 * len(labels)

    def server_of(self, key):
        h = md5_words(key.encode())[0]
        i = bisect.bisect_left(self.values, h)
        if i == len(self.values):
            i = 0
        v = self.values[i]
        j = bisect.bisect_right(self.values, v)
        if len(set(self.owners[i:j])) > 1:
            return None
        return self.owners[i]


def ketama_label(host, port):
    return host if port == 11211 else f"{host}:{port}"


# ------------------------------------------------------------------ checks


def make_items(prefix):
    return {f"{prefix}:{i}": f"value-{i}-{'x' * (i % 97)}".encode() for i in range(N_KEYS)}


def chunks(seq, n=CHUNK):
    seq = list(seq)
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def locate(backends, clients, keys):
    """{key: [indexes of the backends holding it]}, from direct multi-gets."""
    where = {k: [] for k in keys}
    for idx, b in enumerate(backends):
        c = clients(b.port)
        for part in chunks(keys):
            for k in c.get_many(part):
                where[k].append(idx)
    return where


def check_placement(backends, clients, items, continuum):
    """Every key on exactly one backend, the one the continuum predicts, with its value,
    and each backend holding at least MIN_SHARE of the keys."""
    keys = list(items)
    where = locate(backends, clients, keys)
    not_one = {k: v for k, v in where.items() if len(v) != 1}
    assert not not_one, (f"{len(not_one)} of {len(keys)} keys are not on exactly one "
                         f"instance, e.g. {list(not_one.items())[:5]}")
    counts = [0] * len(backends)
    for k in keys:
        counts[where[k][0]] += 1
    for idx, n in enumerate(counts):
        assert n >= MIN_SHARE * len(keys), f"shares {counts}: instance {idx} holds {n}"
    predicted = {k: continuum.server_of(k) for k in keys}
    undecidable = [k for k in keys if predicted[k] is None]
    assert len(undecidable) < len(keys) // 10, len(undecidable)
    wrong = [(k, where[k][0], predicted[k]) for k in keys
             if predicted[k] is not None and where[k][0] != predicted[k]]
    assert not wrong, (f"{len(wrong)} of {len(keys)} keys are not where ketama puts them "
                       f"(key, actual, predicted): {wrong[:5]}; shares {counts}")
    # the values themselves, read straight from the owning instance
    for idx, b in enumerate(backends):
        mine = [k for k in keys if where[k][0] == idx]
        c = clients(b.port)
        for part in chunks(mine):
            got = c.get_many(part)
            assert got == {k: items[k] for k in part}
    return where


class Conn:
    """Raw text-protocol connection (for a multi-get whose reply is checked line by line)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def readline(self):
        for _ in range(100000):
            if b"\r\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\r\n")
                return line
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed; pending {self.buf[:80]!r}"
            self.buf += chunk
        raise AssertionError("no line")

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def get_multi(self, keys):
        """`get k1 k2 ...`: {key: value} from the VALUE blocks up to END; a key
        answered twice fails."""
        self.sock.sendall(b"get " + b" ".join(k.encode() for k in keys) + b"\r\n")
        out = {}
        for _ in range(len(keys) + 1):
            line = self.readline()
            if line == b"END":
                return out
            parts = line.split()
            assert parts[0] == b"VALUE" and len(parts) == 4, line
            key = parts[1].decode()
            assert key not in out, f"{key} answered twice"
            data = self.read_exact(int(parts[3]) + 2)
            assert data.endswith(b"\r\n"), data[-10:]
            out[key] = data[:-2]
        raise AssertionError(f"no END after {len(keys)} VALUE blocks")

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------ twemproxy


def test_twemproxy_ketama(backends, start_nutcracker, clients):
    port = start_nutcracker(backends, named=True)
    proxy = clients(port)
    items = make_items("tw")
    for k, v in items.items():
        assert proxy.set(k, v) is True, k

    # read back through the proxy, 100 keys per multi-get
    for part in chunks(items):
        assert proxy.get_many(part) == {k: items[k] for k in part}

    # twemproxy hashes the configured names: "tessera1-0" .. "tessera1-39", ...
    continuum = Continuum([b.name for b in backends])
    where = check_placement(backends, clients, items, continuum)

    # a raw `get` of 50 keys spread over the three instances, with 5 missing keys mixed
    # in: twemproxy splits it per instance and merges the replies into one, ending in END
    keys = list(items)[:50]
    assert len({where[k][0] for k in keys}) == 3
    absent = [f"tw:absent:{i}" for i in range(5)]
    conn = Conn(port)
    try:
        got = conn.get_multi(keys[:25] + absent + keys[25:])
        assert got == {k: items[k] for k in keys}
        assert conn.get_multi(absent) == {}
    finally:
        conn.close()

    # deletes through the proxy reach the owning instance
    gone = list(items)[:300]
    for k in gone:
        assert proxy.delete(k) is True, k
    assert proxy.delete(gone[0]) is False  # NOT_FOUND passes through
    for part in chunks(gone):
        assert proxy.get_many(part) == {}
    assert all(not v for v in locate(backends, clients, gone).values())
    kept = list(items)[300:600]
    assert proxy.get_many(kept) == {k: items[k] for k in kept}

    # incr/decr through the proxy, checked on the instance ketama names
    counters = [f"tw:counter:{i}" for i in range(60)]
    for i, k in enumerate(counters):
        assert proxy.set(k, b"%d" % (i * 10)) is True
        assert proxy.incr(k, 7) == i * 10 + 7
        assert proxy.decr(k, 2) == i * 10 + 5
    assert proxy.incr("tw:counter:absent", 1) is None
    owners = {k: continuum.server_of(k) for k in counters}
    assert len({o for o in owners.values() if o is not None}) == 3
    for i, k in enumerate(counters):
        if owners[k] is not None:
            assert clients(backends[owners[k]].port).get(k) == b"%d" % (i * 10 + 5), k
    for b in backends:
        b.check_running()


# ------------------------------------------------------------------ pylibmc


def pylibmc_client(backends):
    try:
        import pylibmc
    except ImportError:
        missing("pylibmc not installed: pip install pylibmc")
    mc = pylibmc.Client(
        [f"127.0.0.1:{b.port}" for b in backends], binary=False,
        behaviors={
            # libketama's continuum: md5, 160 points a server, "host:port-N"
            "ketama_weighted": True,
            "connect_timeout": TIMEOUT * 1000,  # ms
            "_poll_timeout": TIMEOUT * 1000,  # ms, for each read and write
        })
    b = mc.behaviors
    assert (b["distribution"], b["hash"], b["ketama_hash"]) == ("consistent weighted",
                                                                "md5", 1), b
    return mc


def test_pylibmc_ketama(backends, clients):
    mc = pylibmc_client(backends)
    try:
        items = make_items("lm")
        for k, v in items.items():
            assert mc.set(k, v) is True, k
        for part in chunks(items):
            assert mc.get_multi(part) == {k: items[k] for k in part}

        continuum = Continuum([ketama_label("127.0.0.1", b.port) for b in backends])
        check_placement(backends, clients, items, continuum)

        gone = list(items)[:300]
        for k in gone:
            assert mc.delete(k) is True, k
        assert mc.delete(gone[0]) is False
        assert mc.get_multi(gone) == {}
        assert all(not v for v in locate(backends, clients, gone).values())

        counters = [f"lm:counter:{i}" for i in range(60)]
        for i, k in enumerate(counters):
            assert mc.set(k, b"%d" % (i * 10)) is True
            assert mc.incr(k, 7) == i * 10 + 7
            assert mc.decr(k, 2) == i * 10 + 5
        owners = {k: continuum.server_of(k) for k in counters}
        assert len({o for o in owners.values() if o is not None}) == 3
        for i, k in enumerate(counters):
            if owners[k] is not None:
                assert clients(backends[owners[k]].port).get(k) == b"%d" % (i * 10 + 5), k
    finally:
        mc.disconnect_all()
    for b in backends:
        b.check_running()


# ------------------------------------------------------------------ both, one continuum


def test_twemproxy_and_pylibmc_agree(backends, start_nutcracker, clients):
    """Without server names twemproxy hashes "host:port-N" like libmemcached does, so
    keys that pylibmc writes straight to the instances read back through nutcracker,
    and the other way round: a proxy and direct clients can share a cluster."""
    port = start_nutcracker(backends, named=False)
    proxy = clients(port)
    mc = pylibmc_client(backends)
    try:
        direct = {f"mix:lm:{i}": b"from-pylibmc-%d" % i for i in range(1000)}
        via_proxy = {f"mix:tw:{i}": b"from-twemproxy-%d" % i for i in range(1000)}
        for k, v in direct.items():
            assert mc.set(k, v) is True, k
        for k, v in via_proxy.items():
            assert proxy.set(k, v) is True, k
        for part in chunks(direct):
            assert proxy.get_many(part) == {k: direct[k] for k in part}
        for part in chunks(via_proxy):
            assert mc.get_multi(part) == {k: via_proxy[k] for k in part}
        where = locate(backends, clients, list(direct) + list(via_proxy))
        assert all(len(v) == 1 for v in where.values())
    finally:
        mc.disconnect_all()
