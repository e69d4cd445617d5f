#!/usr/bin/env python3
"""Servers compared with memtier_benchmark (the independent client), in alternating rounds.

    bench/memtier_compare.py --memtier PATH --pipeline 1 [--tls] \
        --server 'tessera=target/release/tessera -t 1 -p {port} -U 0' \
        --server 'mc-1.6.45=.../memcached -t 1 -p {port} -U 0'

Each server is started once (pinned to --server-cpu), then every round runs memtier against
each server in turn (client pinned to --client-cpu), so slow phases of a noisy machine hit all
servers alike. Per run it records ops/s, p50/p99/p99.9 latency (memtier's JSON), the server's
CPU time per operation (utime+stime of /proc/PID/stat across the run) and, with --syscalls,
its system calls per operation (`perf stat -e raw_syscalls:sys_enter -p PID`) and the share
of gets that hit. memtier's defaults make a miss workload: its connections share one random
seed, so at 1:10 they set the same ~1.4k keys while gets pick from all of --keys (about 5%
hit); --preload first sets every key once (a pipelined memtier run, key pattern P:P), so
gets hit, as in a warm cache. Prints a
markdown table of medians with min-max per server and, against the first server, the median
of the per-round ratios; --json writes everything. `{port}` in a command is replaced by a free
port; with --tls the command must set up TLS on it (memtier then connects with --tls).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idle_conns import free_port, stop, wait_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime+stime of every thread of pid, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def perf_works():
    try:
        r = subprocess.run(
            ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
            capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Server:
    def __init__(self, name, cmd, cpu):
        self.name = name
        self.port = free_port()
        argv = shlex.split(cmd.replace("{port}", str(self.port)))
        if os.geteuid() == 0 and "memcached" in os.path.basename(argv[0]):
            argv += ["-u", "nobody"]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)


def memtier_base(args, server):
    argv = [args.memtier, "-s", "127.0.0.1", "-p", str(server.port), "-P", "memcache_text",
            "-t", "1", "-d", str(args.data_size), "--key-maximum", str(args.keys),
            "--hide-histogram"]
    if args.tls:
        argv += ["--tls", "--tls-skip-verify"]
    if args.client_cpu is not None:
        argv = ["taskset", "-c", str(args.client_cpu)] + argv
    return argv


def preload(args, server):
    """Sets every key of the range once, so the measured gets hit."""
    argv = memtier_base(args, server) + [
        "-c", "1", "--pipeline", "64", "--ratio", "1:0", "--key-pattern", "P:P",
        "--requests", "allkeys"]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=600, check=True)


def run_memtier(args, server, tmp):
    out = os.path.join(tmp, "mt.json")
    argv = memtier_base(args, server) + [
        "-c", str(args.conns), "--pipeline", str(args.pipeline), "--test-time", str(args.time),
        "--ratio", args.ratio, "--print-percentiles", "50,99,99.9", "--json-out-file", out]
    perf = None
    if args.syscalls:
        perf_out = os.path.join(tmp, "perf.txt")
        perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-o", perf_out, "-e", "raw_syscalls:sys_enter",
             "-p", str(server.proc.pid)])
        time.sleep(0.3)  # attached before the load starts
    t0 = cpu_ticks(server.proc.pid)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=args.time + 60, check=True)
    t1 = cpu_ticks(server.proc.pid)
    calls = None
    if perf:
        perf.send_signal(2)
        perf.wait(timeout=10)
        with open(perf_out) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2] == "raw_syscalls:sys_enter":
                    calls = int(parts[0])
    with open(out) as f:
        stats = json.load(f)["ALL STATS"]
    totals = stats["Totals"]
    gets = stats.get("Gets", {})
    looked = (gets.get("Hits/sec") or 0) + (gets.get("Misses/sec") or 0)
    ops = totals["Count"]
    pct = totals["Percentile Latencies"]
    return {
        "ops_s": totals["Ops/sec"],
        "p50_ms": pct.get("p50.00"),
        "p99_ms": pct.get("p99.00"),
        "p999_ms": pct.get("p99.90"),
        "cpu_us_op": (t1 - t0) / CLK_TCK * 1e6 / ops if ops else None,
        "syscalls_op": calls / ops if calls is not None and ops else None,
        "hit_pct": 100 * gets["Hits/sec"] / looked if looked else None,
    }


def med_range(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = statistics.median(xs)
    fmt = "{:.0f}" if m >= 1000 else "{:.3g}"
    return f"{fmt.format(m)} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--server", action="append", required=True, help="NAME=COMMAND with {port}")
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--time", type=int, default=8, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ratio", default="1:10", help="set:get")
    ap.add_argument("--data-size", type=int, default=100)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--no-pin", action="store_true", help="pin neither side")
    ap.add_argument("--syscalls", action="store_true", help="count system calls with perf")
    ap.add_argument("--preload", action="store_true",
                    help="set every key once before the rounds (gets hit)")
    ap.add_argument("--json", help="write every run here")
    args = ap.parse_args()
    if args.no_pin:
        args.server_cpu = args.client_cpu = None
    if args.syscalls and not perf_works():
        print("memtier_compare: perf cannot count raw_syscalls:sys_enter here; not counting",
              file=sys.stderr)
        args.syscalls = False
    servers = []
    results = {}
    try:
        for spec in args.server:
            name, _, cmd = spec.partition("=")
            servers.append(Server(name, cmd, args.server_cpu))
            results[name] = []
            if args.preload:
                preload(args, servers[-1])
        with tempfile.TemporaryDirectory() as tmp:
            for rnd in range(args.rounds):
                order = servers if rnd % 2 == 0 else list(reversed(servers))
                for s in order:
                    r = run_memtier(args, s, tmp)
                    results[s.name].append(r)
                    print(f"round {rnd + 1} {s.name}: {r['ops_s']:.0f} ops/s, "
                          f"p99 {r['p99_ms']} ms, {r['cpu_us_op']:.3f} µs CPU/op"
                          + (f", {r['syscalls_op']:.3f} syscalls/op" if r["syscalls_op"] is not None else "")
                          + (f", {r['hit_pct']:.0f}% of gets hit" if r["hit_pct"] is not None else ""),
                          file=sys.stderr)
    finally:
        for s in servers:
            s.stop()

    base = servers[0].name
    mode = f"{'TLS' if args.tls else 'plaintext'}, pipeline {args.pipeline}"
    print(f"\nmemtier_benchmark, {mode}, {args.conns} connections, {args.data_size}-byte values, "
          f"{args.keys} keys{' (preloaded)' if args.preload else ''}, set:get {args.ratio}, "
          f"{args.rounds} alternating rounds of {args.time} s; medians (min–max)\n")
    print("| server | ops/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/op | syscalls/op | gets hit % |")
    print("|---|---|---|---|---|---|---|---|")
    for s in servers:
        rs = results[s.name]
        print(f"| {s.name} | " + " | ".join(
            med_range([r[k] for r in rs])
            for k in ("ops_s", "p50_ms", "p99_ms", "p999_ms", "cpu_us_op", "syscalls_op",
                      "hit_pct")) + " |")
    print(f"\nPer-round ratios against {base} (median, min–max):\n")
    print("| server | ops/s | server CPU/op | p99 |")
    print("|---|---|---|---|")
    for s in servers[1:]:
        cells = []
        for k in ("ops_s", "cpu_us_op", "p99_ms"):
            ratios = [b[k] / a[k] for a, b in zip(results[s.name], results[base])
                      if a[k] and b[k]]
            cells.append(med_range(ratios) + "×" if ratios else "-")
        print(f"| {base} / {s.name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": mode, "args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
