#!/usr/bin/env python3
"""Peak resident memory of tessera under churn, at several -m and value mixes: the table of
docs/reliability.md ("-m and resident memory"), against its bound -m x 1.15 + 16 MiB.

    bench/churn_rss.py [-m MB ...] [--mix NAME ...] [--threads 2] [--tessera PATH]

Mixes (keys random, seeded; every set is `noreply`, over two connections written in turn,
with an `mn` round trip every 100 batches so the writer never runs far ahead):
  tiny10    3,000,000 sets of 10-byte values over 2,000,000 keys
  small100  3,000,000 sets of 100-byte values over 2,000,000 keys
  3k        3 KB values over 200,000 keys, max(1 GiB, 4 x -m) of values written
  mixed     10 B to 500 KB (the sizes of tests/server.rs's churn test) over 200,000 keys,
            max(1 GiB, 4 x -m) of values written
For each (-m, mix): a fresh `tessera -t THREADS -m MB` on loopback; the peak is the process's
VmHWM at the end (the kernel's high-water mark of its resident memory). Prints a markdown
table and keeps it in docs/results/churn-rss/ (bench/results.py). Every server is stopped.
"""

import argparse
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402
from idle_conns import free_port, read_until, stop, wait_port  # noqa: E402
from mem_per_item import stats  # noqa: E402

MIXED_SIZES = (10, 100, 1000, 5000, 20_000, 100_000, 500_000)
MIXES = ("tiny10", "small100", "3k", "mixed")
VALUE = b"v" * 500_000
BATCH = 20  # sets per write for large values
SMALL_BATCH = 1000  # sets per write for tiny ones


def vm_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def sync(sock):
    """One `mn` round trip: the server has read everything sent before it."""
    sock.sendall(b"mn\r\n")
    read_until(sock, b"MN\r\n", limit=60)


def batches(mix, m_bytes, rng):
    """Yields write batches for MIX (bounded: a fixed count or byte total)."""
    if mix in ("tiny10", "small100"):
        size = 10 if mix == "tiny10" else 100
        value = b"0123456789" * (size // 10)
        for _ in range(3_000_000 // SMALL_BATCH):
            yield b"".join(b"set %s:%d 0 0 %d noreply\r\n%s\r\n"
                           % (mix.encode(), rng.randrange(2_000_000), size, value)
                           for _ in range(SMALL_BATCH))
        return
    total = max(1 << 30, 4 * m_bytes)
    written = 0
    while written < total:
        parts = []
        for _ in range(BATCH):
            if mix == "3k":
                size = 3000
            else:
                top = rng.choice(MIXED_SIZES)
                size = top // 2 + rng.randrange(top // 2 + 1)
            parts.append(b"set %s:%d 0 0 %d noreply\r\n%s\r\n"
                         % (mix.encode(), rng.randrange(200_000), size, VALUE[:size]))
            written += size
        yield b"".join(parts)


def run(tessera, threads, m, mix, seed):
    port = free_port()
    proc = subprocess.Popen([tessera, "-t", str(threads), "-m", str(m), "-p", str(port),
                             "-l", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        wait_port(port, proc)
        conns = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(2)]
        rng = random.Random(seed)
        start = time.monotonic()
        for n, batch in enumerate(batches(mix, m << 20, rng)):
            c = conns[n % 2]
            c.sendall(batch)
            if n % 100 == 99:
                sync(c)
        for c in conns:
            sync(c)
        st = stats(port)
        row = {
            "m": m, "mix": mix,
            "peak_mib": vm_kib(proc.pid, "VmHWM") / 1024,
            "end_mib": vm_kib(proc.pid, "VmRSS") / 1024,
            "bound_mib": m * 1.15 + 16,
            "items": int(st["curr_items"]), "evictions": int(st.get("evictions", 0)),
            "seconds": time.monotonic() - start,
        }
        print(f"-m {m:5d} {mix:9s} peak {row['peak_mib']:7.1f} MiB (bound "
              f"{row['bound_mib']:.0f}), {row['items']} items, {row['evictions']} evictions, "
              f"{row['seconds']:.0f} s", file=sys.stderr)
        return row
    finally:
        for c in conns:
            c.close()
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--mix", nargs="+", choices=MIXES, default=list(MIXES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tessera", default=str(REPO / "target/release/tessera"))
    a = ap.parse_args()
    rows = [run(a.tessera, a.threads, m, mix, a.seed) for m in a.m for mix in a.mix]
    lines = [f"Peak resident memory (VmHWM, MiB) of tessera -t {a.threads}; bound: -m x 1.15 "
             "+ 16 MiB.", "",
             "| -m | mix | peak MiB | bound MiB | within | items held | evictions |",
             "|---|---|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['m']} | {r['mix']} | {r['peak_mib']:.0f} | {r['bound_mib']:.0f} "
                     f"| {'yes' if r['peak_mib'] <= r['bound_mib'] else 'NO'} | {r['items']} "
                     f"| {r['evictions']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    results.save("churn-rss", "table.md", text, [a.tessera])
    if any(r["peak_mib"] > r["bound_mib"] for r in rows):
        sys.exit("churn_rss.py: a peak exceeded its bound")


if __name__ == "__main__":
    main()
