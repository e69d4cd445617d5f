#!/usr/bin/env python3
"""Where the bench scripts keep the raw tables behind the figures in docs/: one directory per
figure under docs/results/ (committed; small text files), each file starting with the run's
date, host, commit and command, so a number in docs/ can be traced to the run that made it.

From Python:  import results; results.save("churn-rss", "table.md", text, servers)
From shell:   python3 bench/results.py save FIGURE FILE [SERVER_BINARY...] < table
              (the command recorded is $RESULTS_CMD, else the parent's command line)

RESULTS_DIR overrides the directory (default: docs/results in the repository); an empty
RESULTS_DIR keeps nothing.
"""

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args):
    try:
        return subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _mem_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / (1 << 20))
    return "?"


def header(command, servers=()):
    """Comment lines ('# ...') naming the run: date, host, commit, servers, command."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "?"
    dirty = "" if subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO).returncode == 0 \
        else " (+uncommitted changes)"
    lines = [
        f"# run: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}",
        f"# host: {os.cpu_count()} CPUs, {_mem_gib()} GiB, {platform.system()} "
        f"{platform.release()}",
        f"# tessera commit: {commit}{dirty}",
    ]
    for s in servers:
        first = (_run([s, "-V"]) or _run([s, "--version"])).splitlines()
        lines.append(f"# {s}: {first[0] if first else '?'}")
    lines.append(f"# command: {command}")
    return "\n".join(lines) + "\n"


def save(figure, name, text, servers=(), command=None):
    """Writes docs/results/FIGURE/NAME (header + text); returns the path, or None when
    RESULTS_DIR is set empty."""
    base = os.environ.get("RESULTS_DIR", str(REPO / "docs" / "results"))
    if not base:
        return None
    if command is None:
        command = " ".join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    out = Path(base) / figure / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header(command, servers) + "\n" + text)
    print(f"raw table: {out}", file=sys.stderr)
    return out


def _parent_command():
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return "?"
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    # "bash bench/x.sh ARGS" -> "bench/x.sh ARGS"
    if args and os.path.basename(args[0]) in ("bash", "sh"):
        args = args[1:]
    return " ".join(args)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "save":
        sys.exit(__doc__)
    save(sys.argv[2], sys.argv[3], sys.stdin.read(), sys.argv[4:],
         os.environ.get("RESULTS_CMD") or _parent_command())
