"""Listeners: several TCP addresses (IPv6 too) and the unix socket serve the same volumes;
an address that cannot be bound fails the start with a clear message."""
import socket
import subprocess

import nbd

from conftest import free_port


def free_port6():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def test_ipv4_ipv6_and_unix_all_serve(daemon_factory):
    port2, port6 = free_port(), free_port6()
    d = daemon_factory(extra_args=["--listen", f"127.0.0.1:{port2}",
                                   "--listen", f"[::1]:{port6}"]).start()
    d.ctl("volume", "create", "v1", "--size", "1M")
    uris = [d.uri("v1"), f"nbd://127.0.0.1:{port2}/v1", f"nbd://[::1]:{port6}/v1",
            d.unix_uri("v1")]
    handles = []
    for i, uri in enumerate(uris):
        h = nbd.NBD()
        h.connect_uri(uri)
        h.pwrite(bytes([i + 1]) * 512, i * 512)
        handles.append(h)
    # One image behind every listener.
    for h in handles:
        assert h.pread(2048, 0) == b"".join(bytes([i + 1]) * 512 for i in range(4))
        h.shutdown()
    assert f"listening on [::1]:{port6}" in d.log_text()


def test_unbindable_address_fails_start(daemon_factory):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = daemon_factory(extra_args=["--listen", f"127.0.0.1:{port}"])
        proc = subprocess.run(d.args(), capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert f"binding 127.0.0.1:{port}" in proc.stdout + proc.stderr


def test_bad_listen_address_is_rejected(daemon_factory):
    d = daemon_factory(extra_args=["--listen", "127.0.0.1:notaport"])
    proc = subprocess.run(d.args(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "notaport" in proc.stdout + proc.stderr
