"""A full data disk: the daemon's data dir on a small tmpfs that a snapshot's chunks do not
fit in. The snapshot fails with a clear "no space" error and loses nothing: the volume reads
back exactly, the store stays consistent across a restart, and once there is room again the
next snapshot completes and restores the same bytes."""
import json
import os
import subprocess

from test_snapshot_common import MiB, create_volume, dump_sha, snapshot, volume_sha, write


def test_snapshot_on_a_full_disk_fails_cleanly_then_succeeds(daemon_factory, tmp_path):
    d = daemon_factory()
    d.data_dir.mkdir(parents=True)
    # Room for the volume's 40 MiB and RocksDB's own files, not for a second copy of the data.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=56M", "tmpfs", str(d.data_dir)],
                   check=True)
    try:
        d.start()
        create_volume(d, "v", 40 * MiB)
        data = os.urandom(40 * MiB)
        write(d, "v", [(off, data[off:off + 4 * MiB]) for off in range(0, len(data), 4 * MiB)])
        before = volume_sha(d, "v")

        p = d.ctl("snapshot", "create", "v", "--wait", json_out=True, check=False)
        rec = json.loads(p.stdout) if p.stdout.strip() else None
        assert p.returncode != 0, p.stdout
        msg = (p.stderr + (rec or {}).get("error", "")).lower()
        assert "space" in msg, p.stdout + p.stderr
        snaps = d.ctl_json("snapshot", "list", "v")
        assert [s["state"] for s in snaps] == ["error"], snaps
        assert volume_sha(d, "v") == before
        # The failed snapshot's chunks are gone: the store holds nothing.
        assert d.ctl_json("status")["stored_bytes"] == 0

        # Room again: the next snapshot copies every chunk (they are still dirty) and is
        # exact, also after a restart.
        subprocess.run(["mount", "-o", "remount,size=256M", str(d.data_dir)], check=True)
        good = snapshot(d, "v")
        assert good["added_bytes"] == 40 * MiB
        assert d.stop() == 0
        d.start()
        assert dump_sha(d, good["id"], tmp_path / "good.raw") == before
        assert d.ctl("snapshot", "verify", good["id"]).returncode == 0
        assert d.ctl_json("status")["stored_bytes"] == 40 * MiB
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        finally:
            subprocess.run(["umount", "-l", str(d.data_dir)], check=False)
