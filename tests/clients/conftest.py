"""Failure reports: when a test fails, every process it started (tessera, nutcracker) that
was not stopped yet is described in the report: its command, whether it is still running
or its exit code, and the end of its log. A failure such as "connection refused" then says
whether the server had exited, and why."""

import sys

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # The call phase's report is made before fixture teardown stops the processes.
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    helpers = sys.modules.get("test_tls")
    for i, p in enumerate(list(getattr(helpers, "RUNNING", ()))):
        rep.sections.append((f"process {i} of this test", helpers.describe(p)))
