"""Failure reports: when a test fails, every process it started (tessera, nutcracker) that
was not stopped yet is described in the report: its command, whether it is still running
or its exit code, and the end of its log. A failure such as "connection refused" then says
whether the server had exited, and why.

Under CI=true (or TESSERA_NO_SKIP=1, run_clients.sh's switch for the same) a skipped
test fails: CI must run every check, and a skip (a missing module, tool or environment
variable) would otherwise read as a pass. The failure names the test and the skip's reason.
Otherwise a skip stays a skip (-rs lists them)."""

import os
import sys

import pytest


def strict_skips():
    """CI=true, as .ci/run and CI services set it, or TESSERA_NO_SKIP=1."""
    return os.environ.get("CI") == "true" or os.environ.get("TESSERA_NO_SKIP") == "1"


def fail_skip(rep, nodeid):
    """Turns a skip's report into a failure that names the test and the skip's reason."""
    # A skip's longrepr is (path, line, "Skipped: reason").
    reason = rep.longrepr
    if isinstance(reason, tuple) and len(reason) == 3:
        reason = reason[2]
    rep.outcome = "failed"
    rep.longrepr = (f"{nodeid} was skipped, and no skips are allowed (CI=true or "
                    f"TESSERA_NO_SKIP=1: every check must run): {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module that skips itself as a whole (allow_module_level) is a collection skip.
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and strict_skips():
        fail_skip(rep, collector.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and strict_skips() and not hasattr(rep, "wasxfail"):
        fail_skip(rep, item.nodeid)
        return
    # The call phase's report is made before fixture teardown stops the processes.
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    helpers = sys.modules.get("test_tls")
    for i, p in enumerate(list(getattr(helpers, "RUNNING", ()))):
        rep.sections.append((f"process {i} of this test", helpers.describe(p)))
