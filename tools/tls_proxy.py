#!/usr/bin/env python3
"""Plaintext-to-TLS relay, to run plaintext-only clients (memccapable) against a TLS server.

Usage:
  tools/tls_proxy.py --listen 127.0.0.1:PORT --connect 127.0.0.1:PORT --cafile ca.pem \
      [--cert client.pem --key client.key] [--server-hostname localhost]

Accepts plaintext TCP on --listen and relays each connection over its own TLS connection
to --connect, verifying the server certificate against --cafile for --server-hostname
(default localhost). --cert/--key present a client certificate (mtls listeners).
Prints `listening on HOST:PORT` on stdout once it accepts (PORT 0 picks a free port).
Exits on SIGTERM or SIGINT, closing all relayed connections. Standard library only.
"""

import argparse
import asyncio
import signal
import ssl
import sys

CONNECT_TIMEOUT = 10  # seconds for TCP connect + TLS handshake to the target
CLOSE_GRACE = 5  # seconds the reply direction may still run after a client's EOF
CHUNK = 65536


def host_port(value):
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def log(msg):
    print(f"tls_proxy: {msg}", file=sys.stderr, flush=True)


async def pump(reader, writer, label):
    """Copies reader to writer until EOF or an error (TLS errors are logged)."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()
    except ssl.SSLError as e:
        log(f"{label}: {e!r}")
    except (OSError, asyncio.IncompleteReadError):
        return


async def close(writer):
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (OSError, ssl.SSLError, asyncio.TimeoutError):
        pass


class Proxy:
    def __init__(self, args):
        self.target = args.connect
        self.unix = args.connect_unix
        self.server_hostname = args.server_hostname
        self.ctx = None
        if self.unix is None:
            self.ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile)
            if args.cert:
                self.ctx.load_cert_chain(args.cert, args.key)
        self.tasks = set()

    def _open(self):
        if self.unix is not None:
            return asyncio.open_unix_connection(self.unix)
        return asyncio.open_connection(
            *self.target, ssl=self.ctx, server_hostname=self.server_hostname
        )

    async def handle(self, c_reader, c_writer):
        task = asyncio.current_task()
        self.tasks.add(task)
        peer = c_writer.get_extra_info("peername")
        u_writer = None
        pumps = []
        try:
            try:
                u_reader, u_writer = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT)
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                where = self.unix or f"{self.target[0]}:{self.target[1]} over TLS"
                log(f"{peer}: cannot reach {where}: {e!r}")
                return
            up = asyncio.ensure_future(pump(c_reader, u_writer, f"{peer} -> server"))
            down = asyncio.ensure_future(pump(u_reader, c_writer, f"server -> {peer}"))
            pumps = [up, down]
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if up in done and down not in done:
                # client EOF: TLS has no half-close, so let replies in flight through
                # for a bounded time, then close both sides
                await asyncio.wait({down}, timeout=CLOSE_GRACE)
        except asyncio.CancelledError:
            pass  # proxy shutting down
        finally:
            for t in pumps:
                t.cancel()
            if pumps:
                await asyncio.wait(pumps, timeout=2)
            if u_writer is not None:
                await close(u_writer)
            await close(c_writer)
            self.tasks.discard(task)

    async def run(self, listen):
        server = await asyncio.start_server(self.handle, listen[0], listen[1])
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, type=host_port, help="HOST:PORT to accept on")
    p.add_argument("--connect", type=host_port, help="TLS server HOST:PORT")
    p.add_argument("--connect-unix", metavar="PATH",
                   help="relay to this unix socket instead (plaintext: no TLS)")
    p.add_argument("--cafile", help="CA file to verify the server with (TLS)")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--server-hostname", default="localhost",
                   help="name to verify the server certificate for (default: localhost)")
    args = p.parse_args()
    if (args.connect is None) == (args.connect_unix is None):
        p.error("give exactly one of --connect and --connect-unix")
    if args.connect is not None and not args.cafile:
        p.error("--connect (TLS) needs --cafile")
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    try:
        proxy = Proxy(args)
    except (OSError, ssl.SSLError) as e:
        log(f"cannot load certificates: {e}")
        return 2
    try:
        asyncio.run(proxy.run(args.listen))
    except OSError as e:
        log(f"cannot listen on {args.listen[0]}:{args.listen[1]}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
