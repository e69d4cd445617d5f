"""Failure reports: when a test fails, every process it started (tessera, nutcracker) that
was not stopped yet is described in the report: its command, whether it is still running
or its exit code, and the end of its log. A failure such as "connection refused" then says
whether the server had exited, and why.

Under CI=true a skipped test fails: CI must run every check, and a skip (a missing module,
tool or environment variable) would otherwise read as a pass. The failure names the test
and the skip's reason. Outside CI a skip stays a skip (-rs lists them)."""

import os
import sys

import pytest


def strict_skips():
    """CI=true, as .ci/run and CI services set it."""
    return os.environ.get("CI") == "true"


def skip_reason(rep):
    # A skip's longrepr is (path, line, "Skipped: reason").
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return rep.longrepr[2]
    return str(rep.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module that skips itself as a whole (allow_module_level) is a collection skip.
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and strict_skips():
        rep.outcome = "failed"
        rep.longrepr = (f"{collector.nodeid} was skipped, and CI=true allows no skips "
                        f"(every check must run): {skip_reason(rep)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and strict_skips() and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        rep.longrepr = (f"{item.nodeid} was skipped, and CI=true allows no skips "
                        f"(every check must run): {skip_reason(rep)}")
        return
    # The call phase's report is made before fixture teardown stops the processes.
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    helpers = sys.modules.get("test_tls")
    for i, p in enumerate(list(getattr(helpers, "RUNNING", ()))):
        rep.sections.append((f"process {i} of this test", helpers.describe(p)))
