"""A real ext4 filesystem on a blocksnap volume, over TCP and over the unix socket.

No /dev/nbdX on this host: nbdfuse exposes the export as a file, losetup turns it into a
block device, and the kernel's ext4 does real I/O through it. Written files (one of 100 MiB
random) must survive umount, a clean `fsck.ext4 -n -f`, and remount with equal checksums.
"""
import hashlib
import os
import subprocess
import time

import pytest

MiB = 1 << 20


def sh(*cmd, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def wait_for_file(path, proc, deadline_s=30):
    """nbdfuse writes its pidfile once it serves; wait for that (or for it to die)."""
    end = time.monotonic() + deadline_s
    while not path.exists():
        assert proc.poll() is None, f"nbdfuse exited {proc.returncode}"
        assert time.monotonic() < end, "nbdfuse did not become ready"
        time.sleep(0.05)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


@pytest.mark.parametrize("transport,connections", [("tcp", 1), ("unix", 1), ("tcp", 4)])
def test_ext4_over_nbd(daemon, tmp_path, transport, connections):
    daemon.ctl("volume", "create", "fs", "--size", "256M")
    uri = daemon.uri("fs") if transport == "tcp" else daemon.unix_uri("fs")
    fusedir, mnt, pidfile = tmp_path / "fuse", tmp_path / "mnt", tmp_path / "nbdfuse.pid"
    fusedir.mkdir()
    mnt.mkdir()
    proc = subprocess.Popen(["nbdfuse", "-C", str(connections), "-P", str(pidfile),
                             str(fusedir / "dev"), uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    loop = None
    mounted = False
    try:
        wait_for_file(pidfile, proc)
        loop = sh("losetup", "-f", "--show", fusedir / "dev").stdout.strip()
        sh("mkfs.ext4", "-q", loop)
        sh("mount", loop, mnt)
        mounted = True
        sums = {}
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
        sh("umount", mnt)
        mounted = False
        # Drop the loop device's page cache so fsck and the remount read through NBD.
        sh("blockdev", "--flushbufs", loop)
        fsck = sh("fsck.ext4", "-n", "-f", loop, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        sh("mount", loop, mnt)
        mounted = True
        for name, digest in sums.items():
            assert sha256(mnt / name) == digest, name
    finally:
        if mounted:
            sh("umount", mnt, check=False)
        if loop:
            sh("losetup", "-d", loop, check=False)
        sh("fusermount3", "-u", fusedir, check=False)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
