#!/usr/bin/env python3
"""Resident memory per idle connection: tessera vs memcached, plaintext and TLS.

    bench/idle_conns.py [--conns N] [--tessera PATH] [--memcached PATH]

For each server and transport: start the server (-t 1, -c N+100), read its VmRSS, open N
connections that each complete a request (`version`; TLS handshakes included), read VmRSS
again, and report (after - before) / N. Every server is stopped at the end. Needs an open-file
limit above N (raised to the hard limit here) and writes certificates to a temp dir. The table
is kept in docs/results/idle-conns/ (bench/results.py).
"""

import argparse
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def stop(proc):
    """Stops a server: SIGTERM, then SIGKILL after 5 s."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def read_until(sock, suffix, limit=10):
    """Reads until what arrived ends with `suffix` (a whole reply); fails after `limit` s or
    on a close. The bench scripts' one reply reader."""
    buf = b""
    deadline = time.monotonic() + limit
    while not buf.endswith(suffix):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {suffix!r} within {limit} s; got {buf[-200:]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"the server closed the connection; got {buf[-200:]!r}")
        buf += chunk
    return buf


def open_conns(port, n, ctx):
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(b"version\r\n")
        buf = read_until(s, b"\r\n")
        assert buf.startswith(b"VERSION"), (i, buf)
        conns.append(s)
    return conns


def measure(name, args, port, n, ctx):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        wait_port(port, proc)
        # One connection first so lazily built per-thread state is in "before".
        warm = open_conns(port, 1, ctx)
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        conns = open_conns(port, n, ctx)
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        per = (after - before) * 1024 / n
        print(f"{name:32s} rss before {before:8d} KiB, after {after:8d} KiB: "
              f"{per:8.0f} bytes per idle connection")
        conns += warm
        return per
    finally:
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--tessera", default=str(REPO / "target/release/tessera"))
    ap.add_argument("--memcached", default=shutil.which("memcached") or "memcached")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        if min(want, hard) < want:
            sys.exit(f"open-file limit {hard} is below {want}")
    tmp = tempfile.mkdtemp()
    try:
        subprocess.run([a.tessera, "certs", "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cert, key = f"{tmp}/server.pem", f"{tmp}/server.key"
        ctx = ssl.create_default_context(cafile=f"{tmp}/ca.pem")
        user = ["-u", "nobody"] if os.getuid() == 0 else []
        maxc = str(a.conns + 100)
        per = {}
        for kind, tls in (("plaintext", None), ("TLS", ctx)):
            for server in ("tessera", "memcached"):
                port = free_port()
                if server == "tessera":
                    args = [a.tessera, "-t", "1", "-p", str(port), "-l", "127.0.0.1", "-c", maxc]
                else:
                    args = [a.memcached, "-t", "1", "-p", str(port), "-l", "127.0.0.1",
                            "-c", maxc, "-U", "0", *user]
                if tls is not None:
                    args += ["-Z", "-o", f"ssl_chain_cert={cert},ssl_key={key}"]
                per[(server, kind)] = measure(f"{server} {kind}", args, port, a.conns, tls)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = (f"{a.conns} connections, -t 1, each after one `version` request\n\n"
            "| server | plaintext bytes / idle connection | TLS bytes / idle connection |\n"
            "|---|---:|---:|\n"
            + "".join(f"| {srv} | {per[(srv, 'plaintext')]:,.0f} | {per[(srv, 'TLS')]:,.0f} |\n"
                      for srv in ("tessera", "memcached")))
    results.save("idle-conns", "table.md", text, [a.tessera, a.memcached])


if __name__ == "__main__":
    main()
