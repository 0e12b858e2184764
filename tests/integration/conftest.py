"""Fixtures that run a real blocksnapd for integration tests.

Every test gets its own daemon on a temp data dir, a free TCP port, a unix NBD socket and a
private control socket. Readiness is taken from the daemon's own sd_notify READY=1 on a
NOTIFY_SOCKET we listen on (no sleeps); shutdown is SIGTERM to the pid we started, with the
exit status checked. The Daemon class lives in tests/lib/harness.py. Run with
/usr/bin/python3 (it has libnbd's `nbd` module).
"""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from harness import CTL, DAEMON, REPO, BUILD, Daemon, NotifyListener, free_port  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line("markers", "package: builds and checks the Debian package (slow; "
                            "runs with BLOCKSNAP_PACKAGE_TEST=1)")


@pytest.fixture
def daemon_factory(tmp_path):
    """Makes daemons with custom arguments; all are stopped at the end of the test."""
    made = []

    def make(subdir="d", **kwargs):
        d = Daemon(tmp_path / subdir, **kwargs)
        d.tmp.mkdir(parents=True, exist_ok=True)
        made.append(d)
        return d

    yield make
    errors = []
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            code = d.stop()
            if code != 0:
                errors.append(f"blocksnapd exited {code} on SIGTERM:\n{d.log_text()[-4000:]}")
        else:
            d._close()
    assert not errors, "\n".join(errors)


@pytest.fixture
def daemon(daemon_factory):
    """A running blocksnapd with TCP and unix NBD sockets and a private control socket."""
    return daemon_factory().start()


@pytest.fixture
def ctl_path():
    return CTL


@pytest.fixture
def daemond_path():
    return DAEMON
