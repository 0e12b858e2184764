"""Who is attached: `volume show` lists NBD clients, delete refuses while clients are
attached unless --force (which disconnects them), connects and disconnects are logged, and
the daemon stops cleanly with clients attached."""
import os
import time

import nbd
import pytest

MiB = 1 << 20


@pytest.fixture
def vol(daemon):
    daemon.ctl("volume", "create", "v1", "--size", "16M")
    return daemon


def test_show_lists_clients_and_delete_needs_force(vol):
    tcp = nbd.NBD()
    tcp.connect_uri(vol.uri("v1"))
    unix = nbd.NBD()
    unix.connect_uri(vol.unix_uri("v1"))
    shown = vol.ctl_json("volume", "show", "v1")
    addresses = sorted(c["address"] for c in shown["clients"])
    assert addresses[0].startswith("127.0.0.1:") and addresses[1] == "unix"
    assert all(c["export"] == "v1" for c in shown["clients"])

    refused = vol.ctl("volume", "delete", "v1", check=False)
    assert refused.returncode != 0
    assert "client" in refused.stderr
    tcp.pwrite(b"x" * 512, 0)  # still served

    vol.ctl("volume", "delete", "--force", "v1")
    for h in (tcp, unix):
        with pytest.raises(nbd.Error):
            h.pread(512, 0)
    log = vol.log_text()
    assert "attached to 'v1'" in log
    assert "disconnected" in log


def test_disconnect_is_logged_and_count_drops(vol):
    h = nbd.NBD()
    h.connect_uri(vol.uri("v1"))
    assert len(vol.ctl_json("volume", "show", "v1")["clients"]) == 1
    h.shutdown()  # NBD_CMD_DISC, then the server closes
    # The server unregisters asynchronously: wait for it, bounded.
    deadline = time.monotonic() + 30
    while vol.ctl_json("volume", "show", "v1")["clients"]:
        assert time.monotonic() < deadline, "client still listed after disconnecting"
        time.sleep(0.05)
    assert "disconnected: client sent NBD_CMD_DISC" in vol.log_text()
    vol.ctl("volume", "delete", "v1")  # no client left: no --force needed


def test_stop_with_clients_attached(daemon_factory):
    d = daemon_factory().start()
    d.ctl("volume", "create", "v1", "--size", "1M")
    handles = []
    for i in range(4):
        h = nbd.NBD()
        h.connect_uri(d.uri("v1") if i % 2 else d.unix_uri("v1"))
        handles.append(h)
    assert d.stop() == 0
    assert not d.unix_path.exists(), "the unix socket is unlinked on stop"
    for h in handles:
        with pytest.raises(nbd.Error):
            h.pread(512, 0)


def test_stop_with_requests_in_flight(daemon_factory):
    d = daemon_factory().start()
    d.ctl("volume", "create", "v1", "--size", "64M")
    h = nbd.NBD()
    h.connect_uri(d.uri("v1"))
    bufs = [nbd.Buffer.from_bytearray(bytearray(os.urandom(MiB))) for _ in range(32)]
    for i, b in enumerate(bufs):
        h.aio_pwrite(b, i * MiB)
    assert h.aio_in_flight() == 32
    assert d.stop() == 0  # drains what it started, closes, exits cleanly
    with pytest.raises(nbd.Error):
        while h.aio_in_flight() > 0:
            h.poll(-1)
        h.pread(512, 0)
