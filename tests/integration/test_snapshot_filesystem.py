"""A snapshot of a mounted ext4 (issue 4): files written and synced, `fsfreeze -f`, snapshot,
`fsfreeze -u`; the dump passes `fsck.ext4 -n -f` and, loop-mounted read-only, holds the same
files. No /dev/nbdX here: nbdfuse + losetup (TESTING.md)."""
import json
import os
import pathlib
import subprocess
import sys

from test_snapshot_common import MiB, create_volume, dump

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from blockdev import loop_device, mounted, nbd_block_device, sh, sha256_file as sha256  # noqa


def test_ext4_snapshot_while_mounted(daemon, tmp_path):
    create_volume(daemon, "fs", 256 * MiB)
    mnt, mnt2 = tmp_path / "mnt", tmp_path / "mnt2"
    with nbd_block_device(daemon.uri("fs"), tmp_path) as loop:
        sh("mkfs.ext4", "-q", loop)
        with mounted(loop, mnt):
            sums = {}
            (mnt / "dir").mkdir()
            for i in range(40):
                p = mnt / "dir" / f"f{i}"
                p.write_bytes(os.urandom(4096 + i * 7919))
                sums[f"dir/f{i}"] = sha256(p)
            big = mnt / "big.bin"
            big.write_bytes(os.urandom(20 * MiB))
            sums["big.bin"] = sha256(big)
            sh("sync")
            sh("fsfreeze", "-f", mnt)
            try:
                snap_id = daemon.ctl("snapshot", "create", "fs").stdout.strip()
            finally:
                sh("fsfreeze", "-u", mnt)
            # Keep using the filesystem while the snapshot copies: none of it may leak in.
            (mnt / "after.txt").write_text("written after the snapshot")
            big.write_bytes(os.urandom(MiB))
            sh("sync")
            done = snapshot_wait(daemon, snap_id)
            assert done["state"] == "completed", done

    image = dump(daemon, snap_id, tmp_path / "fs.raw")
    fsck = sh("fsck.ext4", "-n", "-f", image, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    with loop_device(image, readonly=True) as loop2, mounted(loop2, mnt2, "ro,noload"):
        for name, digest in sums.items():
            assert sha256(mnt2 / name) == digest, name
        assert not (mnt2 / "after.txt").exists()


def snapshot_wait(daemon, snap_id):
    """WaitSnapshot through busctl on the control socket (answered when no longer pending)."""
    p = subprocess.run(["busctl", f"--address=unix:path={daemon.control_path}", "--json=short",
                        "call", "org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Manager",
                        "WaitSnapshot", "s", snap_id], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return {k: v["data"] for k, v in json.loads(p.stdout)["data"][0].items()}
