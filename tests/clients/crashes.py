"""How a crashed server shows, in one place for the pytest fixtures (test_tls.py) and
run_clients.sh: killed by one of CRASH_SIGNALS, or one of CRASH_MARKS in its log (a Rust
panic, an AddressSanitizer report, glibc's heap checks).

    python3 crashes.py LOG...   prints a line for each log that shows a crash; exit 1 if any
"""

import signal
import sys

CRASH_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
CRASH_MARKS = ("panicked at", "AddressSanitizer", "malloc(): ", "free(): ", "double free",
               "tcache_thread_shutdown()")


def log_crash(text):
    """The first crash mark in a log's text, or None."""
    return next((m for m in CRASH_MARKS if m in text), None)


def main(paths):
    crashed = 0
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                mark = log_crash(f.read())
        except OSError:
            continue  # a log that was never written
        if mark:
            print(f"error: {path} shows a crash ({mark!r})", file=sys.stderr)
            crashed += 1
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
