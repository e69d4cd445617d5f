"""Monitoring-tool compatibility: the Prometheus memcached_exporter, memcached-tool, and the
shape of every `stats` reply.

The server is started by the harness (tests/clients/run_clients.sh), not here, and may be
shared with other suites: keys carry a unique prefix and no test depends on absolute counter
values. Environment:
  TESSERA_ADDR    host:port of the server under test (required by the server tests)
  MEMCACHED_TOOL  path of memcached-tool (default: Debian's
                  /usr/share/memcached/scripts/memcached-tool; the tests skip if it is absent)

(a) memcached_exporter cannot be built here, so `scrape()` re-implements, decision by decision,
    what it does with a server's replies: the gomemcache client's reading and splitting of
    `stats`, `stats slabs`, `stats items` and `stats settings`, and the exporter's parsing of
    the fields it reads (Go's strconv.ParseFloat / ParseInt, "yes"/"no", "sec.usec"). The
    field lists are data below. A scrape "succeeds" when the exporter would report
    memcached_up 1.
(b) memcached-tool HOST:PORT stats | settings | display, as an operator runs it.
(c) every `stats*` reply is `STAT <name> <value>\\r\\n` lines and `END\\r\\n`; the error
    replies of `stats detail` and unknown sub-commands are memcached's.

The `test_selfcheck_*` tests need no server: they point the same checkers at a tiny fake
server or at canned bytes with one thing broken, to show that each check can fail.
"""

import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

TIMEOUT = 5
MEMCACHED_TOOL = os.environ.get(
    "MEMCACHED_TOOL", "/usr/share/memcached/scripts/memcached-tool"
)

# =====================================================================================
# (a) What memcached_exporter reads, and how.
#
# Source: github.com/prometheus/memcached_exporter
#   pkg/exporter/exporter.go: Collect, parseStats, collectSlabMetrics, parseStatsSettings,
#     parse (strconv.ParseFloat), parseBool ("yes"/"no"), parseTimeval ("<sec>.<usec>"),
#     sum, extractValueAndNewMetric (a missing key is NOT an error: errKeyNotFound -> nil)
#   vendor/github.com/grobie/gomemcache/memcache/memcache.go: statsFromAddr (sends
#     "stats", "stats slabs", "stats items" on one connection; splits each line on " ";
#     3 tokens starting "STAT" -> name/value; name split on ":": 1 part -> general map,
#     2 parts -> slab map (ParseInt(part 0) must succeed), 3 parts -> items map
#     (ParseInt(part 1) must succeed), more -> ignored), statsSettingsFromAddr (every line
#     up to END must split into 3 or 4 tokens). Lines are read with bufio ReadSlice('\n')
#     (4096-byte buffer: a longer line is an error) until a line equal to "END\r\n"; a
#     first line starting "CLIENT_ERROR " is an error. Anything else (e.g. "ERROR\r\n")
#     is skipped and reading continues, so a sub-command answered ERROR runs into the
#     deadline (default --memcached.timeout 1s, set once per connection and call).
# Any error sets memcached_up to 0.
# =====================================================================================

EXPORTER_TIMEOUT = 1.0  # --memcached.timeout default
# Against the server under test the deadline is a liveness bound instead: what is checked
# is that every reply ends (with END), not that a possibly busy machine answers in 1 s. A
# reply that never ends still runs into it and fails.
SERVER_SCRAPE_TIMEOUT = 20
GO_BUFIO_SIZE = 4096  # bufio.NewReader default size: ReadSlice fails on longer lines

# `stats` (+ the un-prefixed lines of `stats slabs`/`stats items`, which land in the same
# map): parse(s, "cmd_set") and sum(s, "cas_misses", "cas_hits", "cas_badval") are called
# directly, so a missing key is an error.
STATS_REQUIRED_FLOAT = ["cmd_set", "cas_misses", "cas_hits", "cas_badval"]
# Read with parseAndNewMetric: skipped when missing, must ParseFloat when present.
STATS_OPTIONAL_FLOAT = [
    "get_hits", "get_misses", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
    "decr_hits", "decr_misses", "cas_hits", "cas_misses", "touch_hits", "touch_misses",
    "uptime", "time", "cas_badval", "cmd_flush",
    "bytes", "limit_maxbytes", "curr_items", "total_items", "bytes_read", "bytes_written",
    "curr_connections", "total_connections", "rejected_connections", "conn_yields",
    "listen_disabled_num", "evictions", "reclaimed", "store_too_large", "store_no_memory",
    "lru_crawler_starts", "direct_reclaims", "crawler_items_checked", "crawler_reclaimed",
    "moves_to_cold", "moves_to_warm", "moves_within_lru",
    "total_malloced",  # from `stats slabs`
    "accepting_conns",
]
# parseTimeval: split on "." into exactly two parts, each ParseFloat.
STATS_OPTIONAL_TIMEVAL = ["rusage_user", "rusage_system"]
# Used only as a label value (s["version"]); never fails.
STATS_LABEL = ["version"]
# Parsed (optional, ParseFloat) only when the trigger key is present.
STATS_EXTSTORE_TRIGGER = "extstore_limit_maxbytes"
STATS_EXTSTORE_FLOAT = [
    "extstore_compact_lost", "extstore_compact_rescues", "extstore_compact_skipped",
    "extstore_page_allocs", "extstore_page_evictions", "extstore_page_reclaims",
    "extstore_pages_free", "extstore_pages_used", "extstore_objects_evicted",
    "extstore_objects_read", "extstore_objects_written", "extstore_objects_used",
    "extstore_bytes_evicted", "extstore_bytes_written", "extstore_bytes_read",
    "extstore_bytes_used", "extstore_bytes_fragmented", "extstore_limit_maxbytes",
    "extstore_io_queue",
]
STATS_PROXY_TRIGGER = "proxy_backend_total"
STATS_PROXY_FLOAT = [
    "proxy_conn_requests", "proxy_conn_errors", "proxy_conn_oom", "proxy_req_active",
    "proxy_config_reloads", "proxy_config_reload_fails", "proxy_config_cron_runs",
    "proxy_config_cron_fails", "proxy_backend_total", "proxy_backend_marked_bad",
    "proxy_backend_failed", "proxy_request_failed_depth", "round_robin_fallback",
    "unexpected_napi_ids",
]
# `stats items`, per class (items:<N>:<name>): all optional, ParseFloat when present.
ITEMS_OPTIONAL_FLOAT = [
    "number", "age", "hits_to_hot", "hits_to_warm", "hits_to_cold", "hits_to_temp",
    # itemsCounterMetrics
    "crawler_reclaimed", "evicted", "evicted_nonzero", "evicted_time", "evicted_unfetched",
    "expired_unfetched", "outofmemory", "reclaimed", "store_too_large", "store_no_memory",
    "tailrepairs", "mem_requested", "moves_to_cold", "moves_to_warm", "moves_within_lru",
    # itemsGaugeMetrics
    "number_hot", "number_warm", "number_cold", "number_temp", "age_hot", "age_warm",
]
# `stats slabs`, per class (<N>:<name>), only with the slab collector (always on before
# --collector.slab existed, on by default since): parse(v, "cmd_set") and
# sum(v, "cas_hits", "cas_badval") -> missing is an error.
SLABS_REQUIRED_FLOAT = ["cmd_set", "cas_hits", "cas_badval"]
SLABS_OPTIONAL_FLOAT = [
    "get_hits", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "touch_hits",
    "cas_badval", "chunk_size", "chunks_per_page", "total_pages", "total_chunks",
    "used_chunks", "free_chunks", "free_chunks_end", "mem_requested",
]
# `stats settings`: maxconns optional ParseFloat; the LRU block only if lru_crawler == "yes".
SETTINGS_OPTIONAL_FLOAT = ["maxconns"]
SETTINGS_LRU_TRIGGER = ("lru_crawler", "yes")
SETTINGS_LRU_BOOL = ["lru_crawler", "lru_maintainer_thread"]  # exactly "yes" or "no"
SETTINGS_LRU_FLOAT = [
    "lru_crawler_sleep", "lru_crawler_tocrawl", "hot_lru_pct", "warm_lru_pct",
    "hot_max_factor", "warm_max_factor",
]
# Not read by the exporter at all: `evictions on|off` and every other settings field.


class ScrapeError(Exception):
    pass


_GO_DEC = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_HEX = re.compile(
    r"[+-]?0[xX](?=[0-9a-fA-F_.]*[0-9a-fA-F])[0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9]+"
)
_GO_SPECIAL = re.compile(r"[+-]?(?:infinity|inf)|nan", re.IGNORECASE)


def go_parse_float(s):
    """strconv.ParseFloat(s, 64): decimal or hex-with-p-exponent floats, inf/infinity/nan
    (case-insensitive; no sign on nan), no surrounding spaces, no underscores in decimal
    (the rules for underscores in hex are approximated); overflow is an error."""
    if _GO_SPECIAL.fullmatch(s):
        return float(s.lower().replace("infinity", "inf"))
    if _GO_DEC.fullmatch(s):
        v = float(s)
    elif _GO_HEX.fullmatch(s):
        sign = -1.0 if s.startswith("-") else 1.0
        try:
            v = sign * float.fromhex(s.lstrip("+-").replace("_", ""))
        except OverflowError:
            v = math.inf
    else:
        raise ValueError(f"strconv.ParseFloat: parsing {s!r}: invalid syntax")
    if math.isinf(v):
        raise ValueError(f"strconv.ParseFloat: parsing {s!r}: value out of range")
    return v


def go_parse_int(s):
    """strconv.ParseInt(s, 10, 64)."""
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise ValueError(f"strconv.ParseInt: parsing {s!r}: invalid syntax")
    v = int(s)
    if not -(2**63) <= v < 2**63:
        raise ValueError(f"strconv.ParseInt: parsing {s!r}: value out of range")
    return v


def go_trim_space(b):
    return b.strip(b" \t\n\r\x0b\x0c")


class GoConn:
    """A gomemcache connection: bufio reads with one deadline per call."""

    def __init__(self, addr, timeout):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.deadline = None

    def start_call(self):
        self.deadline = _now() + self.timeout  # extendDeadline() in getConn

    def send(self, data):
        self.sock.settimeout(max(self.deadline - _now(), 0.001))
        self.sock.sendall(data)

    def read_slice(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0 and i < GO_BUFIO_SIZE:
                line, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
                return line
            if len(self.buf) >= GO_BUFIO_SIZE:
                raise ScrapeError(
                    f"bufio: buffer full (line longer than {GO_BUFIO_SIZE} bytes: "
                    f"{self.buf[:60]!r}...)"
                )
            left = self.deadline - _now()
            if left <= 0:
                raise ScrapeError(f"i/o timeout (read so far: {self.buf[:80]!r})")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise ScrapeError(
                    f"i/o timeout after {self.timeout}s waiting for END "
                    f"(pending: {self.buf[:80]!r})"
                ) from None
            if not chunk:
                raise ScrapeError("EOF")
            self.buf += chunk

    def close(self):
        self.sock.close()


def _now():
    return time.monotonic()


def gomemcache_stats(conn):
    """memcache.(*Client).statsFromAddr: returns (stats, slabs, items)."""
    conn.start_call()
    stats, slabs, items = {}, {}, {}
    for cmd in (b"stats\r\n", b"stats slabs\r\n", b"stats items\r\n"):
        conn.send(cmd)
        line = conn.read_slice()
        if line.startswith(b"CLIENT_ERROR "):
            raise ScrapeError(f"{cmd.strip().decode()}: memcache: client error: {line!r}")
        while line != b"END\r\n":
            s = line.split(b" ")
            if len(s) == 3 and s[0].startswith(b"STAT"):
                f = s[1].split(b":")
                value = go_trim_space(s[2]).decode("latin-1")
                if len(f) == 1:
                    stats[s[1].decode("latin-1")] = value
                elif len(f) == 2:
                    try:
                        i = go_parse_int(f[0].decode("latin-1"))
                    except ValueError as e:
                        raise ScrapeError(f"{cmd.strip().decode()}: {line!r}: {e}") from None
                    slabs.setdefault(i, {})[f[1].decode("latin-1")] = value
                elif len(f) == 3:
                    try:
                        i = go_parse_int(f[1].decode("latin-1"))
                    except ValueError as e:
                        raise ScrapeError(f"{cmd.strip().decode()}: {line!r}: {e}") from None
                    items.setdefault(i, {})[f[2].decode("latin-1")] = value
            line = conn.read_slice()
    return stats, slabs, items


def gomemcache_stats_settings(conn):
    """memcache.(*Client).statsSettingsFromAddr."""
    conn.start_call()
    conn.send(b"stats settings\r\n")
    line = conn.read_slice()
    if line.startswith(b"CLIENT_ERROR "):
        raise ScrapeError(f"stats settings: memcache: client error: {line!r}")
    out = {}
    while line != b"END\r\n":
        s = line.split(b" ")
        if len(s) == 3:
            out[s[1].decode("latin-1")] = go_trim_space(s[2]).decode("latin-1")
        elif len(s) == 4:  # (sic: the exporter's client repeats token 2)
            v = go_trim_space(s[2]).decode("latin-1")
            out[s[1].decode("latin-1")] = v + "-" + v
        else:
            raise ScrapeError(f"memcache: unexpected stats line format {line!r}")
        line = conn.read_slice()
    return out


def _check_float(where, m, key, errors, required=False):
    if key not in m:
        if required:
            errors.append(f"{where}: required field {key!r} missing")
        return
    try:
        go_parse_float(m[key])
    except ValueError as e:
        errors.append(f"{where}: {key}={m[key]!r}: {e}")


def _check_bool(where, m, key, errors):
    if key in m and m[key] not in ("yes", "no"):
        errors.append(f"{where}: {key}={m[key]!r}: failed parse a bool value (yes/no)")


def _check_timeval(where, m, key, errors):
    if key not in m:
        return
    parts = m[key].split(".")
    try:
        if len(parts) != 2:
            raise ValueError("not <sec>.<usec>")
        go_parse_float(parts[0])
        go_parse_float(parts[1])
    except ValueError as e:
        errors.append(f"{where}: {key}={m[key]!r}: failed parse a timeval value ({e})")


def exporter_parse_stats(stats, slabs, items, enable_slab, errors):
    """exporter.parseStats + collectSlabMetrics."""
    for k in STATS_OPTIONAL_FLOAT:
        _check_float("stats", stats, k, errors)
    for k in STATS_REQUIRED_FLOAT:
        _check_float("stats", stats, k, errors, required=True)
    if STATS_EXTSTORE_TRIGGER in stats:
        for k in STATS_EXTSTORE_FLOAT:
            _check_float("stats", stats, k, errors)
    if STATS_PROXY_TRIGGER in stats:
        for k in STATS_PROXY_FLOAT:
            _check_float("stats", stats, k, errors)
    for k in STATS_OPTIONAL_TIMEVAL:
        _check_timeval("stats", stats, k, errors)
    for cls, u in sorted(items.items()):
        for k in ITEMS_OPTIONAL_FLOAT:
            _check_float(f"stats items class {cls}", u, k, errors)
    if enable_slab:
        for cls, v in sorted(slabs.items()):
            for k in SLABS_OPTIONAL_FLOAT:
                _check_float(f"stats slabs class {cls}", v, k, errors)
            for k in SLABS_REQUIRED_FLOAT:
                _check_float(f"stats slabs class {cls}", v, k, errors, required=True)


def exporter_parse_settings(settings, errors):
    """exporter.parseStatsSettings."""
    for k in SETTINGS_OPTIONAL_FLOAT:
        _check_float("stats settings", settings, k, errors)
    key, want = SETTINGS_LRU_TRIGGER
    if settings.get(key) == want:
        for k in SETTINGS_LRU_BOOL:
            _check_bool("stats settings", settings, k, errors)
        for k in SETTINGS_LRU_FLOAT:
            _check_float("stats settings", settings, k, errors)


def scrape(addr, enable_slab=True, timeout=EXPORTER_TIMEOUT):
    """One exporter Collect(). Returns (up, errors, (stats, slabs, items, settings))."""
    errors = []
    got_stats = got_settings = None  # a failed call leaves the per-server map empty
    conn = GoConn(addr, timeout)
    try:
        try:
            got_stats = gomemcache_stats(conn)
        except (ScrapeError, OSError) as e:
            errors.append(f"Failed to collect stats from memcached: {e}")
            conn.close()  # condRelease closes the connection on a non-cache error
            conn = GoConn(addr, timeout)
        try:
            got_settings = gomemcache_stats_settings(conn)
        except (ScrapeError, OSError) as e:
            errors.append(f"Could not query stats settings: {e}")
    finally:
        conn.close()
    if got_stats is not None:
        exporter_parse_stats(*got_stats, enable_slab, errors)
    if got_settings is not None:
        exporter_parse_settings(got_settings, errors)
    stats, slabs, items = got_stats or ({}, {}, {})
    return (0 if errors else 1), errors, (stats, slabs, items, got_settings or {})


# =====================================================================================
# helpers
# =====================================================================================


def _server_addr():
    value = os.environ.get("TESSERA_ADDR")
    if not value:
        pytest.fail("TESSERA_ADDR is not set (expected host:port of a running server)")
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port))


@pytest.fixture
def addr():
    return _server_addr()


class Raw:
    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def rawline(self):
        """One line including its terminator (\\r\\n expected)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf[:80]!r}")
            self.buf += chunk
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
        return line

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(addr):
    r = Raw(addr)
    yield r
    r.close()


STAT_LINE = re.compile(rb"STAT ([^ \r\n]+) ([^ \r\n]+)\r\n")


def read_stats_reply(r, cmd):
    """Sends cmd, returns the reply's raw lines up to and including the terminator line
    (END, or a lone error line)."""
    r.send(cmd + b"\r\n")
    lines = []
    while True:
        line = r.rawline()
        lines.append(line)
        if line == b"END\r\n" or (
            len(lines) == 1 and re.match(rb"(ERROR|CLIENT_ERROR|SERVER_ERROR)\b", line)
        ):
            return lines
        if len(lines) > 200000:
            raise AssertionError(f"{cmd!r}: no END after 200000 lines")


def check_stats_lines(cmd, lines):
    """(c): every line `STAT <name> <value>\\r\\n`, then `END\\r\\n`. Returns {name: value}."""
    assert lines, f"{cmd!r}: empty reply"
    assert lines[-1] == b"END\r\n", f"{cmd!r}: reply does not end with END\\r\\n: {lines[-1]!r}"
    out = {}
    for line in lines[:-1]:
        m = STAT_LINE.fullmatch(line)
        assert m, (
            f"{cmd!r}: not 'STAT <name> <value>\\r\\n' (non-empty name and value, single "
            f"spaces, no spaces inside): {line!r}"
        )
        name = m.group(1).decode("latin-1")
        assert name not in out, f"{cmd!r}: field {name!r} appears twice"
        out[name] = m.group(2).decode("latin-1")
    return out


def stats_map(addr, cmd):
    r = Raw(addr)
    try:
        return check_stats_lines(cmd, read_stats_reply(r, cmd))
    finally:
        r.close()


SIZES = [10, 100, 1000, 5000, 50000]  # value sizes: five different memcached slab classes


@pytest.fixture
def stored_items(addr):
    """Stores one item of each SIZES (unique keys), deletes them afterwards."""
    prefix = "tools" + uuid.uuid4().hex[:12]
    keys = []
    r = Raw(addr)
    try:
        for n in SIZES:
            key = f"{prefix}_{n}".encode()
            r.send(b"set %s 0 0 %d\r\n%s\r\n" % (key, n, b"v" * n))
            assert r.rawline() == b"STORED\r\n"
            keys.append(key)
        yield keys
        for key in keys:
            r.send(b"delete %s noreply\r\n" % key)
        r.send(b"mn\r\n")
        r.rawline()
    finally:
        r.close()


# =====================================================================================
# (a) memcached_exporter against the server
# =====================================================================================


@pytest.mark.parametrize("enable_slab", [True, False], ids=["slab_collector", "no_slab"])
def test_exporter_scrape_is_up(addr, stored_items, enable_slab):
    up, errors, _ = scrape(addr, enable_slab=enable_slab, timeout=SERVER_SCRAPE_TIMEOUT)
    assert up == 1, "memcached_exporter would report memcached_up 0:\n  " + "\n  ".join(errors)


def test_exporter_required_fields_and_classes(addr, stored_items):
    up, errors, (stats, slabs, items, settings) = scrape(addr, timeout=SERVER_SCRAPE_TIMEOUT)
    assert up == 1, "\n".join(errors)
    for k in STATS_REQUIRED_FLOAT:
        assert k in stats, f"stats: exporter-required field {k!r} missing"
    # The per-class paths must actually be exercised: stored items show up as classes.
    assert items, "stats items: no items:<class>:<name> lines after storing items"
    assert slabs, "stats slabs: no <class>:<name> lines after storing items"
    for cls, v in slabs.items():
        for k in SLABS_REQUIRED_FLOAT:
            assert k in v, f"stats slabs class {cls}: exporter-required field {k!r} missing"
    assert sum(int(u.get("number", "0")) for u in items.values()) >= len(SIZES)
    assert set(items) <= set(slabs), (
        f"classes in stats items {sorted(items)} but not in stats slabs {sorted(slabs)}"
    )
    assert "maxconns" in settings


# =====================================================================================
# (b) memcached-tool
# =====================================================================================


def run_memcached_tool(addr, mode, timeout=20):
    if not os.path.exists(MEMCACHED_TOOL) or shutil.which("perl") is None:
        pytest.skip(f"memcached-tool ({MEMCACHED_TOOL}) or perl not installed")
    target = f"{addr[0]}:{addr[1]}"
    try:
        p = subprocess.run(
            ["perl", MEMCACHED_TOOL, target, mode],
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"memcached-tool {target} {mode} did not finish within {timeout}s (a reply "
            f"without END?); stdout so far: {(e.stdout or b'')[-300:]!r}"
        ) from None
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, f"memcached-tool {mode}: exit {p.returncode}; stderr: {err}"
    assert err == "", f"memcached-tool {mode}: stderr not empty:\n{err}"
    return out


def _tool_table(out, mode, addr):
    lines = out.splitlines()
    assert lines, f"memcached-tool {mode}: no output"
    header = lines[0].split()
    assert header == [f"#{addr[0]}:{addr[1]}", "Field", "Value"], lines[0]
    rows = {}
    for line in lines[1:]:
        parts = line.split()
        assert len(parts) == 2, f"memcached-tool {mode}: odd row {line!r}"
        rows[parts[0]] = parts[1]
    return rows


def test_memcached_tool_stats(addr, stored_items):
    out = run_memcached_tool(addr, "stats")
    rows = _tool_table(out, "stats", addr)
    assert "curr_items" in rows and rows["curr_items"].isdigit(), out
    assert int(rows["curr_items"]) >= len(SIZES)
    for k in ("pid", "uptime", "version", "cmd_get", "cmd_set", "bytes", "limit_maxbytes"):
        assert k in rows, f"memcached-tool stats: no {k} row"
    assert set(rows) == set(stats_map(addr, b"stats")), "tool rows != stats fields"


def test_memcached_tool_settings(addr):
    out = run_memcached_tool(addr, "settings")
    rows = _tool_table(out, "settings", addr)
    for k in ("maxbytes", "maxconns", "tcpport", "item_size_max", "evictions"):
        assert k in rows, f"memcached-tool settings: no {k} row"
    assert rows["tcpport"] == str(addr[1])
    assert set(rows) == set(stats_map(addr, b"stats settings"))


DISPLAY_HEADER = "  #  Item_Size  Max_age   Pages   Count   Full?  Evicted Evict_Time OOM"
DISPLAY_ROW = re.compile(
    r" *(\d+) +(\d+B|\d+\.\dK) +(-?\d+)s +(\d+) +(\d+) +(yes|no) +(-?\d+) +(-?\d+) +(-?\d+)"
)


def test_memcached_tool_display(addr, stored_items):
    out = run_memcached_tool(addr, "display")
    lines = out.splitlines()
    assert lines and lines[0] == DISPLAY_HEADER, out
    rows = {}
    for line in lines[1:]:
        m = DISPLAY_ROW.fullmatch(line)
        assert m, f"memcached-tool display: odd row {line!r}"
        rows[int(m.group(1))] = m
    assert len(rows) >= 3, f"expected several slab classes after storing sizes {SIZES}:\n{out}"
    assert sum(int(m.group(5)) for m in rows.values()) >= len(SIZES), out
    # The tool shows classes 1..<last class in stats slabs> whose total_pages != 0, joining
    # `stats items` and `stats slabs` by class number with its regexes (integer values).
    slabs = {}
    for name, value in stats_map(addr, b"stats slabs").items():
        m = re.fullmatch(r"(\d+):(\w+)", name)
        if m and re.match(r"\d+", value):
            slabs.setdefault(int(m.group(1)), {})[m.group(2)] = int(re.match(r"\d+", value)[0])
    want = {c for c, v in slabs.items() if v.get("total_pages", 0) != 0}
    assert set(rows) == want, f"display rows {sorted(rows)} != classes with pages {sorted(want)}"
    for c, m in rows.items():
        size = slabs[c]["chunk_size"]
        shown = f"{size}B" if size < 1024 else f"{size / 1024.0:.1f}K"
        assert m.group(2) == shown, f"class {c}: Item_Size {m.group(2)} != chunk_size {size}"


# =====================================================================================
# (c) the shape of stats replies
# =====================================================================================

# Answered by tessera (and memcached): must be STAT lines + END.
STATS_COMMANDS = [b"stats", b"stats settings", b"stats items", b"stats slabs", b"stats conns"]
# memcached answers these; a server without them may answer ERROR instead.
STATS_COMMANDS_OPTIONAL = [b"stats sizes", b"stats extstore"]


@pytest.mark.parametrize("cmd", STATS_COMMANDS, ids=lambda c: c.decode().replace(" ", "_"))
def test_stats_reply_format(raw, stored_items, cmd):
    lines = read_stats_reply(raw, cmd)
    fields = check_stats_lines(cmd, lines)
    if cmd in (b"stats", b"stats settings", b"stats conns"):
        assert fields, f"{cmd!r}: no STAT lines"
    if cmd == b"stats items":
        for name in fields:
            assert re.fullmatch(r"items:[0-9]+:[a-z_]+", name), f"stats items: {name!r}"
    if cmd == b"stats slabs":
        for name in fields:
            assert re.fullmatch(r"[0-9]+:[a-z_]+|active_slabs|total_malloced", name), (
                f"stats slabs: {name!r}"
            )
        assert "active_slabs" in fields and "total_malloced" in fields
    if cmd == b"stats conns":
        for name in fields:
            assert re.fullmatch(r"[0-9]+:[a-z_]+", name), f"stats conns: {name!r}"
        # our own connection is listed, by its address
        port = raw.sock.getsockname()[1]
        addrs = [v for n, v in fields.items() if n.endswith(":addr")]
        assert any(a.endswith(f":{port}") for a in addrs), (
            f"stats conns: no :addr ending in our port {port}: {addrs}"
        )
    # the connection is still in step
    raw.send(b"version\r\n")
    assert raw.rawline().startswith(b"VERSION ")


@pytest.mark.parametrize(
    "cmd", STATS_COMMANDS_OPTIONAL, ids=lambda c: c.decode().replace(" ", "_")
)
def test_stats_optional_reply_format(raw, cmd):
    lines = read_stats_reply(raw, cmd)
    if lines != [b"ERROR\r\n"]:
        check_stats_lines(cmd, lines)
    raw.send(b"version\r\n")
    assert raw.rawline().startswith(b"VERSION ")


@pytest.mark.parametrize(
    "cmd, reply",
    [
        (b"stats detail", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
        (b"stats detail bogus", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
        (b"stats foo", b"ERROR\r\n"),
        (b"stats itemz", b"ERROR\r\n"),
        (b"stats reset", b"RESET\r\n"),
    ],
    ids=lambda v: v.decode().strip().replace(" ", "_") if isinstance(v, bytes) else v,
)
def test_stats_fixed_replies(raw, cmd, reply):
    raw.send(cmd + b"\r\n")
    assert raw.rawline() == reply
    raw.send(b"version\r\n")
    assert raw.rawline().startswith(b"VERSION ")


SLABS_RESET_COUNTERS = ["get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits",
                        "cas_hits", "cas_badval", "touch_hits"]
ITEMS_RESET_COUNTERS = ["evicted", "evicted_nonzero", "outofmemory", "reclaimed",
                        "expired_unfetched", "evicted_unfetched", "hits_to_hot",
                        "hits_to_warm", "hits_to_cold", "hits_to_temp"]


def test_stats_reset_zeroes_class_counters(raw, stored_items):
    """memcached's `stats reset` zeroes the per-class counters of `stats slabs` and
    `stats items` too (exporters turn them into rates; a reset that skips them shows up as
    a counter that jumps instead of restarting). Assumes no other client is active."""
    for key in stored_items:
        raw.send(b"get %s\r\n" % key)
        while raw.rawline() != b"END\r\n":
            pass
    raw.send(b"stats reset\r\n")
    assert raw.rawline() == b"RESET\r\n"
    slabs = check_stats_lines(b"stats slabs", read_stats_reply(raw, b"stats slabs"))
    items = check_stats_lines(b"stats items", read_stats_reply(raw, b"stats items"))
    left = {
        n: v
        for n, v in list(slabs.items()) + list(items.items())
        if v != "0" and n.rsplit(":", 1)[-1] in SLABS_RESET_COUNTERS + ITEMS_RESET_COUNTERS
    }
    assert not left, f"counters not zeroed by stats reset: {left}"


# =====================================================================================
# self-checks: the checkers above fail on broken replies (no server needed)
# =====================================================================================

# A condensed memcached 1.6.18 reply set (real field names and value formats).
FAKE_STATS = (
    b"STAT pid 1\r\nSTAT uptime 5\r\nSTAT time 1700000000\r\nSTAT version 1.6.18\r\n"
    b"STAT libevent 2.1.12-stable\r\nSTAT rusage_user 0.003450\r\n"
    b"STAT rusage_system 0.010352\r\nSTAT curr_connections 1\r\nSTAT cmd_get 0\r\n"
    b"STAT cmd_set 5\r\nSTAT cmd_flush 0\r\nSTAT get_hits 0\r\nSTAT get_misses 0\r\n"
    b"STAT cas_misses 0\r\nSTAT cas_hits 0\r\nSTAT cas_badval 0\r\nSTAT bytes 56415\r\n"
    b"STAT curr_items 5\r\nSTAT limit_maxbytes 67108864\r\nSTAT accepting_conns 1\r\nEND\r\n"
)
FAKE_SLABS = (
    b"STAT 1:chunk_size 96\r\nSTAT 1:chunks_per_page 10922\r\nSTAT 1:total_pages 1\r\n"
    b"STAT 1:total_chunks 10922\r\nSTAT 1:used_chunks 1\r\nSTAT 1:free_chunks 10921\r\n"
    b"STAT 1:free_chunks_end 0\r\nSTAT 1:get_hits 0\r\nSTAT 1:cmd_set 1\r\n"
    b"STAT 1:cas_hits 0\r\nSTAT 1:cas_badval 0\r\n"
    b"STAT active_slabs 1\r\nSTAT total_malloced 1048576\r\nEND\r\n"
)
FAKE_ITEMS = (
    b"STAT items:1:number 1\r\nSTAT items:1:age 4\r\nSTAT items:1:evicted 0\r\n"
    b"STAT items:1:evicted_time 0\r\nSTAT items:1:outofmemory 0\r\n"
    b"STAT items:1:hits_to_hot 0\r\nEND\r\n"
)
FAKE_SETTINGS = (
    b"STAT maxbytes 67108864\r\nSTAT maxconns 1024\r\nSTAT tcpport 11211\r\n"
    b"STAT evictions on\r\nSTAT lru_crawler yes\r\nSTAT lru_crawler_sleep 100\r\n"
    b"STAT lru_maintainer_thread yes\r\nSTAT hot_max_factor 0.20\r\n"
    b"STAT item_size_max 1048576\r\nEND\r\n"
)
FAKE_REPLIES = {
    b"stats": FAKE_STATS,
    b"stats slabs": FAKE_SLABS,
    b"stats items": FAKE_ITEMS,
    b"stats settings": FAKE_SETTINGS,
}


class FakeServer:
    """Answers each request line from a table (unknown lines: ERROR), one thread per conn."""

    def __init__(self, replies):
        self.replies = replies
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = self.lsock.getsockname()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                while b"\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                line, _, buf = buf.partition(b"\n")
                c.sendall(self.replies.get(line.rstrip(b"\r"), b"ERROR\r\n"))
        except OSError:
            return

    def close(self):
        self.lsock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def fake():
    made = []

    def start(changes=None):
        replies = dict(FAKE_REPLIES)
        replies.update(changes or {})
        s = FakeServer(replies)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_selfcheck_exporter_accepts_memcached_replies(fake):
    up, errors, (stats, slabs, items, settings) = scrape(fake().addr)
    assert up == 1, errors
    assert stats["total_malloced"] == "1048576" and slabs[1]["cmd_set"] == "1"
    assert items[1]["number"] == "1" and settings["lru_crawler"] == "yes"


BROKEN = {
    "slabs_answered_ERROR": {b"stats slabs": b"ERROR\r\n"},
    "items_no_END": {b"stats items": FAKE_ITEMS[: -len(b"END\r\n")]},
    "stats_CLIENT_ERROR": {b"stats": b"CLIENT_ERROR nope\r\n"},
    "missing_cmd_set": {b"stats": FAKE_STATS.replace(b"STAT cmd_set 5\r\n", b"")},
    "missing_cas_misses": {b"stats": FAKE_STATS.replace(b"STAT cas_misses 0\r\n", b"")},
    "bad_float": {b"stats": FAKE_STATS.replace(b"curr_items 5", b"curr_items 5k")},
    "rusage_not_timeval": {b"stats": FAKE_STATS.replace(b"0.003450", b"3")},
    "slab_key_not_int": {b"stats slabs": b"STAT x1:chunk_size 96\r\n" + FAKE_SLABS},
    "items_key_not_int": {b"stats items": b"STAT items:a:number 1\r\n" + FAKE_ITEMS},
    "slab_missing_cas_badval": {
        b"stats slabs": FAKE_SLABS.replace(b"STAT 1:cas_badval 0\r\n", b"")
    },
    "items_bad_float": {b"stats items": FAKE_ITEMS.replace(b"age 4", b"age -")},
    "settings_5_tokens": {b"stats settings": b"STAT a b c d\r\n" + FAKE_SETTINGS},
    "settings_bool_on": {
        b"stats settings": FAKE_SETTINGS.replace(b"maintainer_thread yes", b"maintainer_thread on")
    },
    "settings_bad_maxconns": {
        b"stats settings": FAKE_SETTINGS.replace(b"maxconns 1024", b"maxconns 1,024")
    },
    "line_over_4096": {b"stats": b"STAT x " + b"1" * 5000 + b"\r\n" + FAKE_STATS},
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_selfcheck_exporter_rejects(fake, name):
    up, errors, _ = scrape(fake(BROKEN[name]).addr, timeout=0.5)
    assert up == 0 and errors, f"{name}: scrape should fail"


def test_selfcheck_go_parsers():
    for ok in ["0", "12", "-3", "+4", "1.5", ".5", "5.", "1e3", "1E-3", "inf", "-Inf", "NaN",
               "infinity", "0x1p-2", "0.000001"]:
        go_parse_float(ok)
    for bad in ["", " 1", "1 ", "1_000", "1e", "e5", "0x10", "+nan", "1e400", "yes", "1.2.3",
                "--1", "1,5"]:
        with pytest.raises(ValueError):
            go_parse_float(bad)
    assert go_parse_int("+12") == 12
    for bad in ["", "1.0", "0x1", "1_0", "9223372036854775808", " 1"]:
        with pytest.raises(ValueError):
            go_parse_int(bad)


@pytest.mark.parametrize(
    "lines",
    [
        [b"STAT a 1\r\n"],  # no END
        [b"STAT a 1\r\n", b"END\n"],  # END without CR
        [b"STAT a 1\n", b"END\r\n"],  # bare LF
        [b"STAT  a 1\r\n", b"END\r\n"],  # double space
        [b"STAT a \r\n", b"END\r\n"],  # empty value
        [b"STAT a b c\r\n", b"END\r\n"],  # space in value / name
        [b"STAT a 1\r\n", b"STAT a 2\r\n", b"END\r\n"],  # duplicate
        [b"ERROR\r\n"],
    ],
)
def test_selfcheck_format_rejects(lines):
    with pytest.raises(AssertionError):
        check_stats_lines(b"stats", lines)


def test_selfcheck_memcached_tool_detects_missing_items(fake):
    if not os.path.exists(MEMCACHED_TOOL) or shutil.which("perl") is None:
        pytest.skip(f"memcached-tool ({MEMCACHED_TOOL}) or perl not installed")
    s = fake({b"stats items": b"ERROR\r\n"})
    with pytest.raises(AssertionError, match="did not finish"):
        run_memcached_tool(s.addr, "display", timeout=3)
    out = run_memcached_tool(fake().addr, "display")
    assert out.splitlines()[0] == DISPLAY_HEADER and len(out.splitlines()) == 2
