#!/usr/bin/env python3
"""Hit ratio of a memcached-protocol server under a Zipf workload (cache-aside: get, and set on
a miss), for comparing eviction policies: tessera's S3-FIFO against memcached's segmented LRU.

Usage: bench/hitratio.py HOST:PORT [--keys N] [--requests N] [--zipf S] [--value-size B] [--seed N]

Deterministic for a given seed, so two servers see the same request sequence. Prints one JSON
line: {"hits":..,"requests":..,"hit_ratio":..}. Pure stdlib; requests go in pipelined batches
(one multi-get, then the sets for its misses).
"""
import argparse
import bisect
import json
import random
import socket
import sys
import time


def zipf_cdf(n, s):
    acc = 0.0
    cdf = []
    for i in range(1, n + 1):
        acc += 1.0 / (i ** s)
        cdf.append(acc)
    return [c / acc for c in cdf]


def read_until(sock, buf, marker, deadline):
    while marker not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("server did not answer in time")
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--zipf", type=float, default=0.99)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    # noreply sets followed by gets: without NODELAY, Nagle waits for a delayed ACK each batch
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cdf = zipf_cdf(a.keys, a.zipf)
    rng = random.Random(a.seed)
    # a random permutation so popular keys are spread over the key space (and the shards)
    perm = list(range(a.keys))
    rng.shuffle(perm)
    value = b"v" * a.value_size
    hits = 0
    done = 0
    deadline = time.monotonic() + 3600
    while done < a.requests:
        n = min(a.batch, a.requests - done)
        keys = [b"key:%010d" % perm[min(bisect.bisect_left(cdf, rng.random()), a.keys - 1)]
                for _ in range(n)]
        # one request per key (not a multi-get): duplicates in a batch count separately
        sock.sendall(b"".join(b"get " + k + b"\r\n" for k in keys))
        buf = b""
        found = []
        for k in keys:
            buf = read_until(sock, buf, b"END\r\n", deadline)
            reply, buf = buf.split(b"END\r\n", 1)
            found.append(reply.startswith(b"VALUE "))
        misses = [k for k, f in zip(keys, found) if not f]
        hits += n - len(misses)
        if misses:
            # set each distinct missed key once
            uniq = list(dict.fromkeys(misses))
            sock.sendall(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(value), value)
                                  for k in uniq))
        done += n
    # make sure the last noreply sets were processed before we leave
    sock.sendall(b"get __hitratio_done__\r\n")
    read_until(sock, b"", b"END\r\n", deadline)
    print(json.dumps({"hits": hits, "requests": done, "hit_ratio": round(hits / done, 4),
                      "keys": a.keys, "zipf": a.zipf, "value_size": a.value_size}))


if __name__ == "__main__":
    sys.exit(main())
