"""Clients of a snapshot export ("<volume>@<snapshot>") are clients of the volume: the volume's
client list counts them, a plain delete is refused while they are connected, and
`volume delete --force` disconnects them as it does the volume's own clients."""
import re

import nbd
import pytest

from snapexp_helpers import create_snapshot, pattern, snap_daemon, write

MiB = 1 << 20


def test_snapshot_export_client_counts_and_is_disconnected_by_forced_delete(daemon_factory,
                                                                              tmp_path):
    d = snap_daemon(daemon_factory, tmp_path)
    vol_id = d.ctl("volume", "create", "vol", "--size", str(4 * MiB)).stdout.strip()
    data = pattern("s", 64 * 1024)
    write(d, "vol", [(0, data)])
    snap = create_snapshot(d, "vol")
    export = f"vol@{snap}"

    h = nbd.NBD()
    try:
        h.connect_uri(d.uri(export))
        # Answered, so registered: the loop registers a client before its first request.
        assert h.pread(len(data), 0) == data
        clients = d.ctl_json("volume", "show", "vol")["clients"]
        assert len(clients) == 1 and clients[0]["export"] == export, clients
        text = d.ctl("volume", "show", "vol").stdout
        assert re.search(r"^Clients:\s+1$", text, re.M), text

        p = d.ctl("volume", "delete", "vol", check=False)
        assert p.returncode == 1
        assert "has 1 connected client(s)" in p.stderr, p.stderr

        d.ctl("volume", "delete", "vol", "--force")
        assert d.ctl_json("volume", "list") == []
        assert not (d.data_dir / "volumes" / f"{vol_id}.img").exists()
        # The server closed the connection: the next request fails instead of being served.
        with pytest.raises(nbd.Error):
            h.pread(4096, 0)
        assert "disconnected by the server" in d.log_text()
    finally:
        del h  # closes the handle (the binding has no explicit close)
