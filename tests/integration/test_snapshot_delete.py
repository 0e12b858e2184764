"""Delete (DESIGN.md §3): a chain of 5 snapshots with overlapping changes; deleting the middle,
newest and oldest in several orders leaves every remaining snapshot dumping to its recorded
checksum; deleting all of them and the volume leaves an empty store."""
import os

import pytest

from test_snapshot_common import (CHUNK, MiB, create_volume, dump_sha, snapshot, status,
                                  volume_sha, write)

SIZE = 16 * MiB


def build_chain(daemon):
    """Five snapshots; each changes an overlapping window of chunks (and zeroes one)."""
    create_volume(daemon, "v", SIZE)
    chain = []
    for i in range(5):
        start = i * 24 * CHUNK  # windows of 64 chunks overlapping by 40
        write(daemon, "v", [(start, os.urandom(64 * CHUNK)), ((200 - i) * CHUNK, bytes(CHUNK))])
        rec = snapshot(daemon, "v", f"n={i}")
        chain.append((rec["id"], volume_sha(daemon, "v")))
    return chain


@pytest.mark.parametrize("order", [
    [2, 4, 0, 1, 3],   # middle, newest, oldest, ...
    [4, 3, 2, 1, 0],   # newest first
    [0, 1, 2, 3, 4],   # oldest first
    [1, 3, 0, 4, 2],   # delete-all-but-one, then the last
])
def test_delete_orders(daemon, tmp_path, order):
    chain = build_chain(daemon)
    live_sha = volume_sha(daemon, "v")
    remaining = dict(enumerate(chain))
    for idx in order:
        snap_id, _ = remaining.pop(idx)
        daemon.ctl("snapshot", "delete", snap_id)
        for k, (sid, sha) in remaining.items():
            assert dump_sha(daemon, sid, tmp_path / "d.raw") == sha, (order, idx, k)
    assert daemon.ctl_json("snapshot", "list") == []
    # The live volume kept its bytes, and a new snapshot of it is complete and correct.
    assert volume_sha(daemon, "v") == live_sha
    rec = snapshot(daemon, "v")
    assert dump_sha(daemon, rec["id"], tmp_path / "n.raw") == live_sha
    daemon.ctl("snapshot", "delete", rec["id"])
    daemon.ctl("volume", "delete", "v")
    st = status(daemon)
    assert st["chunks"] == 0 and st["stored_bytes"] == 0, st


def test_delete_volume_first_keeps_its_snapshots(daemon, tmp_path):
    chain = build_chain(daemon)
    daemon.ctl("volume", "delete", "v")
    for sid, sha in chain:
        assert dump_sha(daemon, sid, tmp_path / "d.raw") == sha
    assert len(daemon.ctl_json("snapshot", "list", "v")) == 5  # by the deleted volume's name
    for sid, _ in chain[1:]:
        daemon.ctl("snapshot", "delete", sid)
    assert dump_sha(daemon, chain[0][0], tmp_path / "d.raw") == chain[0][1]
    daemon.ctl("snapshot", "delete", chain[0][0])
    st = status(daemon)
    assert st["chunks"] == 0 and st["stored_bytes"] == 0, st


def test_delete_survives_restart(daemon, tmp_path):
    chain = build_chain(daemon)
    daemon.ctl("snapshot", "delete", chain[2][0])
    daemon.restart()
    for i in (0, 1, 3, 4):
        assert dump_sha(daemon, chain[i][0], tmp_path / "d.raw") == chain[i][1]
