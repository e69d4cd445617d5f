#!/usr/bin/env python3
"""Record byte-exact memcached TEXT protocol request/response cases.

Usage: python3 tools/wirecases/record.py [--memcached /usr/bin/memcached]
                                        [--src tools/wirecases/cases.src]
                                        [--out tests/wire/text_cases.txt]

Starts a private memcached (`memcached -p PORT -l 127.0.0.1 -U 0 -t 1`) on a
free loopback port, replays every case of the source file against it (one fresh
connection per case, cases in file order, server never restarted), records the
exact reply bytes and writes the case table read by tessera's Rust tests.
The server is always killed at the end (finally).  Stdlib only.

Source file syntax (cases.src) -- a superset of the output syntax:
  blank lines and lines starting with '#' are ignored;
  '## text'        copied to the output as the comment line '# text';
  'case NAME'      starts a case (NAME: [A-Za-z0-9_.-]+, unique);
  '> PAYLOAD'      bytes to send (escapes \\r \\n \\\\ \\xNN, macros below);
  'closed'         directly after a '>' line: this send must make memcached
                   close the connection (no sentinel is sent); must be the
                   last step of the case;
  'sleep MS'       sleep MS milliseconds between exchanges;
  'cas literal'    (before the first step) record the cas uniques of this
                   case's replies as they are, not as $CAS: for cases that
                   set the cas unique themselves (meta flag E), where the
                   number is the reply under test;
  'end'            ends the case.
Macros in '>' payloads (a literal '$' must be written \\x24):
  $K               the case name (use it as key prefix: keys stay unique);
  $KEYN(n)         a key of exactly n bytes: NAME + '_' + 'k' * (n-len-1);
  $KEYN(n,c)       same, padded with the single char c instead of 'k';
  $REPEAT(c,n)     the single printable char c repeated n times;
  $CAS             kept as-is in the output; replaced, when sending, by the
                   cas unique of the most recent 'VALUE k f n CAS' line, or
                   'c<digits>' token of a meta reply line, seen in a reply
                   of this case (so '> ms $K 1 C$CAS' works).

Meta replies: in a reply line whose first token is a meta return code
(VA HD NS EX NF), every later token 'c<1-20 digits>' (after the <size> of a VA
line) is a cas unique and is recorded as 'c$CAS', except 'c0' (memcached's
"no cas" answer on NS/EX/NF; a real cas unique is never 0), which stays
literal; the data block of a 'VA <size>' line is skipped.  No text-protocol
reply line starts with these codes.

Output header: chosen by --header (default 'auto': 'meta' when the --src
file name starts with 'meta', else 'text').  The meta header also documents
the meta cas rule above.  Both name the server as it names itself (its reply
to `version`, asked on a connection of its own before the cases), the date of
the recording (UTC) and the command that regenerates the table.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import time

SENTINEL = b"get __sentinel__\r\n"
SENTINEL_REPLY = b"END\r\n"
# Recorder-only end probe: after the sentinel the recorder also sends the meta
# no-op "mn", whose reply "MN\r\n" unambiguously marks the end of the sentinel
# reply (a reply may itself end in "END\r\n").  The replayer does not need it.
PROBE = b"mn\r\n"
PROBE_REPLY = b"MN\r\n"

MAX_CASES = 2000
MAX_STEPS_PER_CASE = 200
MAX_REPLY_BYTES = 16 * 1024 * 1024
MAX_TOTAL_SLEEP_MS = 2500
RECV_CHUNK = 65536
RUN_THRESHOLD = 64  # runs of >= this many identical [A-Za-z0-9] become $REPEAT

HEADER = """\
# memcached TEXT protocol conformance cases, recorded byte-exactly
@ORIGIN@
#
# Format (line oriented, '\\n' separated, no blank lines):
#   # ...          comment line (ignored)
#   case NAME      start of a case; NAME has no spaces
#   > PAYLOAD      bytes the client sends (one send)
#   < PAYLOAD      ALL bytes the server sends in reply to the preceding '>'.
#                  A bare '<' (no space, nothing after) means no bytes.
#   closed         (optional, right after a '<' line) the server closes the
#                  connection after that reply; the case ends there.
#   sleep MS       sleep MS milliseconds before the next exchange.
#   end            end of the case.
# Every '>' is followed by exactly one '<'.  PAYLOAD is everything after the
# first two characters ("> " / "< ") of the line, decoded as:
#   \\r -> CR   \\n -> LF   \\\\ -> backslash   \\xNN -> byte 0xNN (2 hex digits)
#   $REPEAT(c,n) -> the single printable char c repeated n times (n decimal)
#   $CAS         -> see below
#   any other char -> itself (printable ASCII only).
# Every other byte (control bytes, >= 0x80, '$' itself, and a space that is the
# first or last byte of a payload) is written as \\xNN, so '$' in a line
# always starts a macro and lines never have leading/trailing whitespace.
#
# Cases run in file order, each on its own fresh TCP connection, against ONE
# server that is never restarted; every case uses keys prefixed with its own
# name.  The flush_all cases form the last group of the file (they wipe the
# whole cache) and must stay last.
#
# Reply framing (sentinel): after every '>' send that is NOT followed by
# 'closed', the client sends the extra request
#     get __sentinel__\\r\\n
# on the same connection and reads until it has received the expected bytes
# followed by the sentinel's reply "END\\r\\n"; i.e. the server must send
# exactly  expected + "END\\r\\n"  (the key __sentinel__ never exists).
# For a '>' followed by 'closed' no sentinel is sent: the client reads until
# EOF (with a timeout) and the bytes received must equal the '<' payload.
#
# $CAS: in a '<' line, $CAS stands for the decimal cas unique in a
# "VALUE <key> <flags> <bytes> <cas>" line (any 1-20 digit number matches);
# the replayer remembers it.  In a '>' line, $CAS is replaced by the cas unique
# of the most recent such VALUE line received in this case (the last one
# of a reply wins).
"""

META_HEADER = """\
# memcached META protocol conformance cases (with some text commands mixed
# in), recorded byte-exactly
@ORIGIN@
#
# Format (line oriented, '\\n' separated, no blank lines):
#   # ...          comment line (ignored)
#   case NAME      start of a case; NAME has no spaces
#   > PAYLOAD      bytes the client sends (one send)
#   < PAYLOAD      ALL bytes the server sends in reply to the preceding '>'.
#                  A bare '<' (no space, nothing after) means no bytes.
#   closed         (optional, right after a '<' line) the server closes the
#                  connection after that reply; the case ends there.
#   sleep MS       sleep MS milliseconds before the next exchange.
#   end            end of the case.
# Every '>' is followed by exactly one '<'.  PAYLOAD is everything after the
# first two characters ("> " / "< ") of the line, decoded as:
#   \\r -> CR   \\n -> LF   \\\\ -> backslash   \\xNN -> byte 0xNN (2 hex digits)
#   $REPEAT(c,n) -> the single printable char c repeated n times (n decimal)
#   $CAS         -> see below
#   any other char -> itself (printable ASCII only).
# Every other byte (control bytes, >= 0x80, '$' itself, and a space that is the
# first or last byte of a payload) is written as \\xNN, so '$' in a line
# always starts a macro and lines never have leading/trailing whitespace.
#
# Cases run in file order, each on its own fresh TCP connection, against ONE
# server that is never restarted; every case uses keys prefixed with its own
# name (no case here runs flush_all).
#
# Reply framing (sentinel): after every '>' send that is NOT followed by
# 'closed', the client sends the extra request
#     get __sentinel__\\r\\n
# on the same connection and reads until it has received the expected bytes
# followed by the sentinel's reply "END\\r\\n"; i.e. the server must send
# exactly  expected + "END\\r\\n"  (the key __sentinel__ never exists).
# For a '>' followed by 'closed' no sentinel is sent: the client reads until
# EOF (with a timeout) and the bytes received must equal the '<' payload.
#
# $CAS: in a '<' line, $CAS stands for a decimal cas unique (any 1-20 digit
# number matches) in either
#   - a "VALUE <key> <flags> <bytes> <cas>" line (text gets/gats), or
#   - a meta reply line "VA <size> <flags>*", "HD <flags>*", "NS <flags>*",
#     "EX <flags>*" or "NF <flags>*", where it is the number of a 'c' return
#     flag, written "c$CAS" (e.g. "HD c$CAS", "VA 3 f0 c$CAS").  Exceptions:
#     "c0" (what memcached returns for 'c' on NS/EX/NF) is literal, never
#     $CAS; and a case whose source says 'cas literal' (it sets the cas
#     unique itself with the E flag) has every cas unique recorded literally.
# The replayer remembers it.  In a '>' line, $CAS is replaced by the cas
# unique of the most recent such VALUE line or 'c' token received in this case
# (the last one of a reply wins), e.g. "ms k 1 C$CAS", "md k C$CAS".
# Cas values are never compared for equality between replies: the same $CAS in
# two '<' lines does not mean the same number.
#
# Time-dependent reply flags: 't' (TTL remaining) is only used on items
# without expiry (always "t-1"); 'l' (seconds since last access) is only
# requested in the same send as the command that stored/accessed the item (so
# it is "l0" unless the server's clock ticks inside that one send).
# The 'me' (meta debug) hit line is server-specific and not recorded.
"""

ORIGIN = """\
# on {date} (UTC) from the server whose `version` reply is
#   {version}
# (`memcached -p PORT -l 127.0.0.1 -U 0 -t 1`, default -m/-I)
# by tools/wirecases/record.py from {src}.
# DO NOT EDIT: regenerate with the same server:
#   python3 tools/wirecases/record.py --memcached PATH{header} \\
#       --src {src} --out {out}
"""


class CaseError(Exception):
    pass


# ---------------------------------------------------------------- parsing

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
CAS = object()  # placeholder segment


def unescape_src(text, case_name, where):
    """Decode a source payload into a list of segments (bytes or CAS)."""
    segs = []
    buf = bytearray()
    i = 0
    n = len(text)
    steps = 0
    while i < n:
        steps += 1
        if steps > 10 * n + 10:
            raise CaseError(f"{where}: parser loop bound exceeded")
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                raise CaseError(f"{where}: dangling backslash")
            e = text[i + 1]
            if e == "r":
                buf += b"\r"
                i += 2
            elif e == "n":
                buf += b"\n"
                i += 2
            elif e == "\\":
                buf += b"\\"
                i += 2
            elif e == "x":
                h = text[i + 2:i + 4]
                if not re.fullmatch(r"[0-9a-fA-F]{2}", h):
                    raise CaseError(f"{where}: bad \\x escape")
                buf.append(int(h, 16))
                i += 4
            else:
                raise CaseError(f"{where}: unknown escape \\{e}")
        elif ch == "$":
            rest = text[i:]
            m = re.match(r"\$REPEAT\((.),(\d+)\)", rest)
            if m:
                c = m.group(1)
                if not (0x21 <= ord(c) <= 0x7E):
                    raise CaseError(f"{where}: $REPEAT char must be printable")
                buf += c.encode() * int(m.group(2))
                i += m.end()
                continue
            m = re.match(r"\$KEYN\((\d+)(?:,(.))?\)", rest)
            if m:
                total = int(m.group(1))
                fill = (m.group(2) or "k").encode()
                prefix = case_name.encode() + b"_"
                if total < len(prefix):
                    raise CaseError(f"{where}: $KEYN({total}) shorter than prefix")
                buf += prefix + fill * (total - len(prefix))
                i += m.end()
                continue
            if rest.startswith("$CAS"):
                if buf:
                    segs.append(bytes(buf))
                    buf = bytearray()
                segs.append(CAS)
                i += 4
                continue
            if rest.startswith("$K"):
                buf += case_name.encode()
                i += 2
                continue
            raise CaseError(f"{where}: unknown macro at {rest[:12]!r}")
        else:
            if not (0x20 <= ord(ch) <= 0x7E):
                raise CaseError(f"{where}: non-printable char in source")
            buf += ch.encode()
            i += 1
    if buf:
        segs.append(bytes(buf))
    return segs


def parse_src(path):
    with open(path, "r", encoding="ascii") as f:
        lines = f.read().split("\n")
    items = []  # ('comment', text) | ('case', name, steps)
    names = set()
    cur = None
    for lineno, line in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        if line.endswith("\r"):
            raise CaseError(f"{where}: CR in source line")
        if line.startswith("##"):
            items.append(("comment", line[2:].strip()))
            continue
        if line.strip() == "" or line.startswith("#"):
            continue
        if cur is None:
            m = re.fullmatch(r"case (\S+)", line)
            if not m:
                raise CaseError(f"{where}: expected 'case NAME', got {line!r}")
            name = m.group(1)
            if not NAME_RE.match(name) or name in names:
                raise CaseError(f"{where}: bad or duplicate case name {name!r}")
            names.add(name)
            cur = (name, [])
            continue
        name, steps = cur
        if line == "cas literal":
            if steps:
                raise CaseError(f"{where}: 'cas literal' must come before the first step")
            steps.append(["cas_literal"])
            continue
        if len(steps) > MAX_STEPS_PER_CASE:
            raise CaseError(f"{where}: too many steps")
        if steps and steps[-1][0] == "send" and steps[-1][2]:
            if line != "end":
                raise CaseError(f"{where}: 'closed' must be the last step")
        if line == "end":
            if not any(s[0] == "send" for s in steps):
                raise CaseError(f"{where}: case {name} has no exchange")
            items.append(("case", name, steps))
            cur = None
            if sum(1 for it in items if it[0] == "case") > MAX_CASES:
                raise CaseError("too many cases")
        elif line.startswith("> "):
            steps.append(["send", unescape_src(line[2:], name, where), False])
        elif line == "closed":
            if not steps or steps[-1][0] != "send":
                raise CaseError(f"{where}: 'closed' must follow a '>' line")
            steps[-1][2] = True
        elif re.fullmatch(r"sleep \d+", line):
            steps.append(["sleep", int(line.split()[1])])
        else:
            raise CaseError(f"{where}: unexpected line {line!r}")
    if cur is not None:
        raise CaseError(f"{path}: missing 'end' for case {cur[0]}")
    total_sleep = sum(s[1] for it in items if it[0] == "case"
                      for s in it[2] if s[0] == "sleep")
    if total_sleep > MAX_TOTAL_SLEEP_MS:
        raise CaseError(f"total sleep {total_sleep} ms > {MAX_TOTAL_SLEEP_MS}")
    return items


# ---------------------------------------------------------------- encoding

ALNUM = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def escape_bytes(data):
    out = []
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b in ALNUM:
            j = i
            while j < n and data[j] == b and j - i < (1 << 30):
                j += 1
            if j - i >= RUN_THRESHOLD:
                out.append(f"$REPEAT({chr(b)},{j - i})")
                i = j
                continue
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x24 or b < 0x20 or b > 0x7E:
            out.append(f"\\x{b:02x}")
        else:
            out.append(chr(b))
        i += 1
    return out


def encode_segments(segs):
    parts = []
    for s in segs:
        if s is CAS:
            parts.append("$CAS")
        else:
            parts.extend(escape_bytes(s))
    if parts and parts[0] == " ":
        parts[0] = "\\x20"
    if parts and parts[-1] == " ":
        parts[-1] = "\\x20"
    return "".join(parts)


META_CODES = (b"VA", b"HD", b"NS", b"EX", b"NF")
META_CAS_RE = re.compile(rb"c[1-9][0-9]{0,19}")


def split_cas(reply):
    """Replace cas uniques of 'VALUE k f n cas' lines, and 'c<digits>' tokens
    of meta reply lines (VA/HD/NS/EX/NF), by CAS placeholders.

    Returns (segments, last_cas_or_None)."""
    segs = []
    last = None
    pos = 0
    start = 0
    guard = 0
    while pos < len(reply):
        guard += 1
        if guard > len(reply) + 10:
            raise CaseError("split_cas loop bound exceeded")
        eol = reply.find(b"\r\n", pos)
        if eol < 0:
            break
        line = reply[pos:eol]
        nxt = eol + 2
        if line.startswith(b"VALUE "):
            toks = line.split(b" ")
            if len(toks) in (4, 5) and toks[3].isdigit():
                nbytes = int(toks[3])
                if len(toks) == 5 and toks[4].isdigit():
                    cas_start = pos + len(b" ".join(toks[:4])) + 1
                    segs.append(reply[start:cas_start])
                    segs.append(CAS)
                    start = eol
                    last = toks[4]
                if reply[eol + 2 + nbytes:eol + 4 + nbytes] == b"\r\n":
                    nxt = eol + 2 + nbytes + 2
        elif line[:2] in META_CODES and (len(line) == 2 or line[2:3] == b" "):
            toks = line.split(b" ")
            first = 1
            if toks[0] == b"VA" and len(toks) >= 2 and toks[1].isdigit():
                first = 2
                nbytes = int(toks[1])
                if reply[eol + 2 + nbytes:eol + 4 + nbytes] == b"\r\n":
                    nxt = eol + 2 + nbytes + 2
            off = pos + sum(len(t) + 1 for t in toks[:first])
            for t in toks[first:]:
                if META_CAS_RE.fullmatch(t):
                    segs.append(reply[start:off + 1])
                    segs.append(CAS)
                    start = off + len(t)
                    last = t[1:]
                off += len(t) + 1
        pos = nxt
    if start < len(reply):
        segs.append(reply[start:])
    return [s for s in segs if s is CAS or s], last


# ---------------------------------------------------------------- network

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    return s


def wait_for_server(port, proc, deadline_s=10.0):
    deadline = time.monotonic() + deadline_s
    for _ in range(1000):
        if proc.poll() is not None:
            raise CaseError(f"memcached exited early (rc={proc.returncode})")
        try:
            s = connect(port, 1.0)
            s.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    raise CaseError("memcached did not start listening")


def read_until_suffix(sock, suffix, deadline):
    buf = bytearray()
    for _ in range(1_000_000):
        if buf.endswith(suffix):
            return bytes(buf), False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CaseError(f"timeout waiting for reply; got {bytes(buf[-200:])!r}")
        sock.settimeout(min(remaining, 5.0))
        try:
            chunk = sock.recv(RECV_CHUNK)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(buf), True
        if not chunk:
            return bytes(buf), True
        buf += chunk
        if len(buf) > MAX_REPLY_BYTES:
            raise CaseError("reply too large")
    raise CaseError("recv loop bound exceeded")


def read_until_eof(sock, deadline):
    buf = bytearray()
    for _ in range(1_000_000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CaseError(f"expected close, but connection stayed open; got {bytes(buf[-200:])!r}")
        sock.settimeout(min(remaining, 5.0))
        try:
            chunk = sock.recv(RECV_CHUNK)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(buf)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > MAX_REPLY_BYTES:
            raise CaseError("reply too large")
    raise CaseError("recv loop bound exceeded")


def server_version(port):
    """The server's own name for itself: its reply to `version`, without the CRLF."""
    sock = connect(port, 5.0)
    try:
        sock.sendall(b"version\r\n")
        reply, eof = read_until_suffix(sock, b"\r\n", time.monotonic() + 10.0)
    finally:
        sock.close()
    if eof or not reply.startswith(b"VERSION "):
        raise CaseError(f"unexpected reply to version: {reply[:200]!r}")
    return reply[:-2].decode("ascii", "replace")


def run_case(port, name, steps):
    """Returns the list of output lines for this case."""
    out = [f"case {name}"]
    last_cas = None
    literal = False
    sock = connect(port, 5.0)
    try:
        for step in steps:
            if step[0] == "cas_literal":
                literal = True
                out.append("# cas uniques recorded literally (set with E in this case)")
                continue
            if step[0] == "sleep":
                time.sleep(step[1] / 1000.0)
                out.append(f"sleep {step[1]}")
                continue
            _, segs, closes = step
            payload = bytearray()
            for s in segs:
                if s is CAS:
                    if last_cas is None:
                        raise CaseError(f"{name}: $CAS used before any cas was seen in a reply")
                    payload += last_cas
                else:
                    payload += s
            # generous deadline for multi-megabyte payloads
            deadline = time.monotonic() + 10.0 + len(payload) / 1e6
            try:
                sock.sendall(bytes(payload))
            except (BrokenPipeError, ConnectionResetError) as e:
                if not closes:
                    raise CaseError(f"{name}: send failed: {e}")
            if closes:
                reply = read_until_eof(sock, deadline)
            else:
                try:
                    sock.sendall(SENTINEL + PROBE)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise CaseError(f"{name}: server closed unexpectedly ({e}); mark the step 'closed'")
                data, eof = read_until_suffix(sock, SENTINEL_REPLY + PROBE_REPLY, deadline)
                if eof:
                    raise CaseError(f"{name}: server closed unexpectedly after {data[-200:]!r}; mark the step 'closed'")
                reply = data[:-len(SENTINEL_REPLY + PROBE_REPLY)]
            rsegs, cas = ([reply], None) if literal else split_cas(reply)
            if cas is not None:
                last_cas = cas
            out.append("> " + encode_segments(segs))
            enc = encode_segments(rsegs)
            out.append("< " + enc if enc else "<")
            if closes:
                out.append("closed")
    finally:
        sock.close()
    out.append("end")
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    ap.add_argument("--src", default=os.path.join(here, "cases.src"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "wire", "text_cases.txt"))
    ap.add_argument("--header", choices=("auto", "text", "meta"), default="auto")
    args = ap.parse_args()
    kind = args.header
    if kind == "auto":
        kind = "meta" if os.path.basename(args.src).startswith("meta") else "text"

    items = parse_src(args.src)
    port = free_port()
    cmd = [args.memcached, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-t", "1"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ncases = 0
    try:
        wait_for_server(port, proc)
        origin = ORIGIN.format(
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            version=server_version(port),
            src=os.path.relpath(os.path.abspath(args.src), root),
            out=os.path.relpath(os.path.abspath(args.out), root),
            header="" if args.header == "auto" else f" --header {args.header}")
        header = (META_HEADER if kind == "meta" else HEADER).replace("@ORIGIN@\n", origin)
        lines = header.rstrip("\n").split("\n")
        for it in items:
            if it[0] == "comment":
                lines.append("# " + it[1] if it[1] else "#")
                continue
            _, name, steps = it
            try:
                lines.extend(run_case(port, name, steps))
            except CaseError as e:
                raise CaseError(f"case {name}: {e}")
            ncases += 1
            if proc.poll() is not None:
                raise CaseError(f"memcached died during case {name}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {ncases} cases, {len(text)} bytes", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except CaseError as e:
        print(f"record.py: error: {e}", file=sys.stderr)
        sys.exit(1)
