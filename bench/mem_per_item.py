#!/usr/bin/env python3
"""Resident memory per stored item: tessera vs memcached.

    bench/mem_per_item.py [--items N] [--key-size 16] [--value-size 100] [-m MB]
                          [--tessera PATH] [--memcached PATH] [--bench PATH]

For each server: start it (-t 1, -m MB: large enough that nothing is evicted), read its
VmRSS, store N distinct items (keys of exactly --key-size bytes, values of --value-size
bytes) with tessera-bench --preload, check `curr_items` == N and `evictions` == 0, read
VmRSS again and report (after - before) / N. Every server is stopped at the end. The table
is kept in docs/results/mem-per-item/ (bench/results.py).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402
from idle_conns import free_port, read_until, rss_kib, stop, wait_port  # noqa: E402


def stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"stats\r\n")
        buf = read_until(s, b"END\r\n")
    out = {}
    for line in buf.decode().splitlines():
        p = line.split()
        if len(p) == 3 and p[0] == "STAT":
            out[p[1]] = p[2]
    return out


def measure(name, args, port, a):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        # keys: PREFIX + 10 digits
        prefix = "k" * (a.key_size - 10)
        subprocess.run([a.bench, "-q", "--target", f"tcp://127.0.0.1:{port}", "--preload",
                        "--keys", str(a.items), "--key-prefix", prefix,
                        "--value-size", str(a.value_size), "--ratio", "1:0", "-n", "1000",
                        "--pipeline", "16"],
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
        st = stats(port)
        items, ev = int(st["curr_items"]), int(st.get("evictions", 0))
        if items != a.items or ev != 0:
            raise RuntimeError(f"{name}: {items} items held, {ev} evictions: raise -m")
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        per = (after - before) * 1024 / items
        print(f"{name:10s} rss before {before:8d} KiB, after {after:8d} KiB, "
              f"{items} items: {per:6.1f} bytes per item")
        return per
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--key-size", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("-m", type=int, default=1024, help="memory limit, MB (no evictions)")
    ap.add_argument("--tessera", default=str(REPO / "target/release/tessera"))
    ap.add_argument("--bench", default=str(REPO / "target/release/tessera-bench"))
    ap.add_argument("--memcached", default=shutil.which("memcached") or "memcached")
    a = ap.parse_args()
    if a.key_size < 11:
        sys.exit("--key-size: at least 11 (a prefix and 10 digits)")
    user = ["-u", "nobody"] if os.getuid() == 0 else []
    res = {}
    for server in ("tessera", "memcached"):
        port = free_port()
        base = ["-t", "1", "-p", str(port), "-l", "127.0.0.1", "-m", str(a.m)]
        args = [a.tessera, *base] if server == "tessera" else [a.memcached, *base, "-U", "0", *user]
        res[server] = measure(server, args, port, a)
    print(f"tessera / memcached bytes per item: {res['tessera'] / res['memcached']:.3f}")
    text = (f"{a.items} items, {a.key_size}-byte keys, {a.value_size}-byte values, -t 1 -m {a.m}"
            "\n\n| server | resident bytes per item |\n|---|---:|\n"
            + "".join(f"| {k} | {v:.1f} |\n" for k, v in res.items()))
    results.save("mem-per-item", "table.md", text, [a.tessera, a.memcached])


if __name__ == "__main__":
    main()
