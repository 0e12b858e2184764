"""A real ext4 filesystem on a blocksnap volume, over TCP and over the unix socket.

No /dev/nbdX on this host: nbdfuse exposes the export as a file, losetup turns it into a
block device, and the kernel's ext4 does real I/O through it. Written files (one of 100 MiB
random) must survive umount, a clean `fsck.ext4 -n -f`, and remount with equal checksums.
"""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from blockdev import MiB, mounted, nbd_block_device, sh, sha256_file as sha256  # noqa: E402


@pytest.mark.parametrize("transport,connections", [("tcp", 1), ("unix", 1), ("tcp", 4)])
def test_ext4_over_nbd(daemon, tmp_path, transport, connections):
    daemon.ctl("volume", "create", "fs", "--size", "256M")
    uri = daemon.uri("fs") if transport == "tcp" else daemon.unix_uri("fs")
    mnt = tmp_path / "mnt"
    with nbd_block_device(uri, tmp_path, connections) as loop:
        sh("mkfs.ext4", "-q", loop)
        sums = {}
        with mounted(loop, mnt):
            big = mnt / "big.bin"
            with open(big, "wb") as f:
                for _ in range(100):
                    f.write(os.urandom(MiB))
            sums["big.bin"] = sha256(big)
            (mnt / "dir").mkdir()
            for i in range(50):
                p = mnt / "dir" / f"small{i}"
                p.write_bytes(os.urandom(1000 + i * 997))
                sums[f"dir/small{i}"] = sha256(p)
            sh("sync")
        # Drop the loop device's page cache so fsck and the remount read through NBD.
        sh("blockdev", "--flushbufs", loop)
        fsck = sh("fsck.ext4", "-n", "-f", loop, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        with mounted(loop, mnt):
            for name, digest in sums.items():
                assert sha256(mnt / name) == digest, name
