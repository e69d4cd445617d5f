"""ElastiCache-style auto discovery against a real auto-discovery client.

Three tessera data nodes, and a fourth instance as the configuration endpoint whose
config file's [cluster] table lists them (allow_set = true). The client is
django-elastipymemcache's AWSElastiCacheClient (PyPI; pymemcache underneath): it asks the
endpoint `config get cluster`, parses ElastiCache's reply and hashes keys over the nodes
it found. The tests check that

  - it discovers exactly the three nodes, and every key it writes is on exactly one of
    them, spread over all three, and reads back;
  - `config set cluster` with a higher version (two nodes) is picked up by the same
    client on its next discovery, and keys then go only to those two;
  - a stale version, a bad list and a disabled `config set` are refused with one clear
    line, and `stats settings` shows the version and node count.

Processes, timeouts and teardown as in test_cluster.py (whose helpers this reuses).
Environment: TESSERA_BIN; TESSERA_CLUSTER_REQUIRED=1 fails instead of skipping when
django-elastipymemcache is missing (tools/test.sh installs it).
"""

import signal
import socket
import time

import pytest

from test_cluster import (  # noqa: F401  (procs, clients: fixtures)
    TIMEOUT,
    Tessera,
    clients,
    locate,
    missing,
    procs,
)

N_KEYS = 600
DISCOVERY_WAIT = 10  # seconds the client may take to see a new list (bounded loop)


def elasticache_client_class():
    try:
        from django_elastipymemcache.client import AWSElastiCacheClient
    except ImportError as e:
        missing(f"django-elastipymemcache not importable ({e}): "
                "pip install django-elastipymemcache")
    return AWSElastiCacheClient


def command(port, data):
    """Sends raw bytes to 127.0.0.1:port, returns the reply up to its last CRLF."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if out.endswith(b"END\r\n") or (out.endswith(b"\r\n") and not
                                           out.startswith(b"CONFIG")):
                break
        return out


def config_set(port, payload):
    return command(port, b"config set cluster 0 %d\r\n%s\r\n" % (len(payload), payload))


def settings(port):
    raw = command(port, b"stats settings\r\n")
    return dict(line.split(" ", 2)[1:] for line in raw.decode().splitlines()
                if line.startswith("STAT "))


def node_list(version, nodes):
    return b"%d\n%s\n" % (version, b" ".join(
        b"node%d.tessera.test|127.0.0.1|%d" % (i, n.port) for i, n in nodes))


@pytest.fixture
def cluster(procs, tmp_path):
    """(data nodes, configuration endpoint)."""
    nodes = []
    for i in range(3):
        t = Tessera(f"node{i + 1}", tmp_path / f"node{i + 1}.log")
        procs.append(t)
        t.wait_port()
        nodes.append(t)
    listed = ", ".join(f'"node{i + 1}.tessera.test|127.0.0.1|{n.port}"'
                       for i, n in enumerate(nodes))
    conf = tmp_path / "endpoint.toml"
    conf.write_text(f"[cluster]\nversion = 1\nnodes = [{listed}]\nallow_set = true\n")
    endpoint = Tessera("endpoint", tmp_path / "endpoint.log", ["--config", conf])
    procs.append(endpoint)
    endpoint.wait_port()
    return nodes, endpoint


def test_wire_format(cluster):
    nodes, endpoint = cluster
    reply = command(endpoint.port, b"config get cluster\r\n")
    payload = b"1\n" + b" ".join(b"node%d.tessera.test|127.0.0.1|%d" % (i + 1, n.port)
                                 for i, n in enumerate(nodes)) + b"\n"
    assert reply == b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(payload), payload)
    # A node without [cluster] knows no `config` command, as memcached.
    assert command(nodes[0].port, b"config get cluster\r\n") == b"ERROR\r\n"


def test_client_discovers_and_follows_changes(cluster, clients):
    AWSElastiCacheClient = elasticache_client_class()
    nodes, endpoint = cluster
    client = AWSElastiCacheClient(
        f"127.0.0.1:{endpoint.port}", connect_timeout=TIMEOUT, timeout=TIMEOUT,
        default_noreply=False, discovery_interval=0.05)
    try:
        want = {f"127.0.0.1:{n.port}" for n in nodes}
        assert set(client.clients) == want, "the client did not discover the three nodes"

        items = {f"disc:{i}": f"v{i}".encode() for i in range(N_KEYS)}
        for k, v in items.items():
            assert client.set(k, v)
        where = locate(nodes, clients, list(items))
        assert all(len(w) == 1 for w in where.values()), \
            [k for k, w in where.items() if len(w) != 1][:5]
        for idx in range(3):
            share = sum(1 for w in where.values() if w == [idx]) / N_KEYS
            assert share > 0.15, f"node{idx + 1} holds {share:.0%} of the keys"
        for k, v in items.items():
            assert client.get(k) == v

        # The operator drops node3: version 2 lists node1 and node2.
        two = list(enumerate(nodes[:2], 1))
        assert config_set(endpoint.port, node_list(2, two)) == b"STORED\r\n"
        want2 = {f"127.0.0.1:{n.port}" for n in nodes[:2]}
        deadline = time.monotonic() + DISCOVERY_WAIT
        while set(client.clients) != want2 and time.monotonic() < deadline:
            client.get("disc:poll")  # each call may rediscover (discovery_interval)
            time.sleep(0.05)
        assert set(client.clients) == want2, "the client did not follow config set cluster"
        fresh = {f"after:{i}": b"x" for i in range(200)}
        for k, v in fresh.items():
            assert client.set(k, v)
        where = locate(nodes, clients, list(fresh))
        assert all(len(w) == 1 and w[0] in (0, 1) for w in where.values())
    finally:
        client.close()

    s = settings(endpoint.port)
    assert (s["cluster_config_version"], s["cluster_nodes"], s["cluster_config_set"]) \
        == ("2", "2", "yes")


def test_bad_updates_are_refused(cluster, procs, tmp_path):
    nodes, endpoint = cluster
    one = list(enumerate(nodes[:1], 1))
    assert config_set(endpoint.port, node_list(1, one)) == \
        b"CLIENT_ERROR cluster version 1 is not above the current 1 " \
        b"(clients ignore a list whose version did not go up)\r\n"
    assert config_set(endpoint.port, b"5\nnode1|127.0.0.1|0\n") == \
        b"CLIENT_ERROR bad cluster config: 'node1|127.0.0.1|0': the port must be 1 " \
        b"to 65535\r\n"
    assert config_set(endpoint.port, b"x\n") == \
        b"CLIENT_ERROR bad cluster config: 'x' is not a version number\r\n"
    assert command(endpoint.port, b"config get nodes\r\n") == \
        b"CLIENT_ERROR unknown config key (only 'cluster')\r\n"
    # Still version 1 with three nodes.
    assert settings(endpoint.port)["cluster_nodes"] == "3"

    # Without allow_set, the list is read-only.
    conf = tmp_path / "ro.toml"
    conf.write_text(f'[cluster]\nnodes = ["127.0.0.1:{nodes[0].port}"]\n')
    ro = Tessera("readonly", tmp_path / "readonly.log", ["--config", conf])
    procs.append(ro)
    ro.wait_port()
    assert config_set(ro.port, node_list(9, one)) == \
        b"CLIENT_ERROR config set not allowed (start with -o cluster_config_set)\r\n"
    assert command(ro.port, b"config get cluster\r\n").startswith(b"CONFIG cluster 0 ")


def wait_for(pred, what):
    """Polls pred() (bounded: DISCOVERY_WAIT seconds)."""
    deadline = time.monotonic() + DISCOVERY_WAIT
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    pytest.fail(what)


def test_sighup_rereads_the_cluster_table(cluster, tmp_path):
    nodes, endpoint = cluster
    conf = tmp_path / "endpoint.toml"
    listed = ", ".join(f'"node{i + 1}.tessera.test|127.0.0.1|{n.port}"'
                       for i, n in enumerate(nodes[:2]))
    # Changed nodes, same version: refused, with a log line that says why.
    conf.write_text(f"[cluster]\nversion = 1\nnodes = [{listed}]\nallow_set = true\n")
    endpoint.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "version 1 is not above the current 1: not applied" in endpoint.output(),
             f"no refusal logged:\n{endpoint.output()}")
    assert settings(endpoint.port)["cluster_nodes"] == "3"
    # A broken file: refused, the list stays.
    conf.write_text("[cluster]\nversion = 2\nnodes = [\"no-port\"]\n")
    endpoint.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "cannot re-read the cluster list, keeping the old one" in endpoint.output(),
             f"no error logged:\n{endpoint.output()}")
    assert settings(endpoint.port)["cluster_config_version"] == "1"
    # A higher version: taken.
    conf.write_text(f"[cluster]\nversion = 2\nnodes = [{listed}]\nallow_set = true\n")
    endpoint.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: settings(endpoint.port)["cluster_config_version"] == "2",
             f"the new list was not taken:\n{endpoint.output()}")
    assert settings(endpoint.port)["cluster_nodes"] == "2"
    assert "cluster list from" in endpoint.output()
    payload = node_list(2, list(enumerate(nodes[:2], 1)))
    assert command(endpoint.port, b"config get cluster\r\n") == \
        b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(payload), payload)
    endpoint.check_running()
