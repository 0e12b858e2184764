"""Restore an ext4 volume's snapshot and mount the new volume at once, before hydration is
done (nbdfuse + loop, as in test_nbd_filesystem.py): the files match, fsck is clean, and the
filesystem is writable while the volume still hydrates."""
import hashlib
import os
import subprocess
import time

from snapexp_helpers import create_snapshot, restore_daemon, show, wait_hydrated

MiB = 1 << 20


def sh(*cmd, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Fuse:
    """nbdfuse DIR/dev URI + a loop device over it; always torn down."""

    def __init__(self, tmp, name, uri):
        self.dir, self.pidfile = tmp / f"fuse-{name}", tmp / f"nbdfuse-{name}.pid"
        self.dir.mkdir()
        self.proc = subprocess.Popen(["nbdfuse", "-P", str(self.pidfile), str(self.dir / "dev"),
                                      uri], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 30
        while not self.pidfile.exists():  # nbdfuse writes it once it serves
            assert self.proc.poll() is None, f"nbdfuse exited {self.proc.returncode}"
            assert time.monotonic() < end, "nbdfuse did not become ready"
            time.sleep(0.05)
        self.loop = sh("losetup", "-f", "--show", self.dir / "dev").stdout.strip()

    def close(self):
        if self.loop:
            sh("losetup", "-d", self.loop, check=False)
            self.loop = None
        sh("umount", self.dir, check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_mount_restore_before_hydration_is_done(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="256K")
    d.ctl("volume", "create", "fs", "--size", "64M")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    sums = {}
    src = Fuse(tmp_path, "src", d.uri("fs"))
    mounted = False
    try:
        sh("mkfs.ext4", "-q", src.loop)
        sh("mount", src.loop, mnt)
        mounted = True
        (mnt / "dir").mkdir()
        for i in range(20):
            p = mnt / "dir" / f"f{i}"
            p.write_bytes(os.urandom(20000 + i * 9973))
            sums[f"dir/f{i}"] = sha256(p)
        big = mnt / "big.bin"
        big.write_bytes(os.urandom(6 * MiB))
        sums["big.bin"] = sha256(big)
        sh("umount", mnt)
        mounted = False
    finally:
        if mounted:
            sh("umount", mnt, check=False)
        src.close()
    s1 = create_snapshot(d, "fs")

    d.ctl("volume", "create", "fs2", "--from-snapshot", s1)
    dst = Fuse(tmp_path, "dst", d.uri("fs2"))
    try:
        v = show(d, "fs2")
        assert v["hydrated_bytes"] < v["hydrate_total_bytes"], v  # still hydrating
        sh("mount", dst.loop, mnt)
        mounted = True
        for name, digest in sums.items():
            assert sha256(mnt / name) == digest, name
        (mnt / "new.bin").write_bytes(b"restored" * 1000)  # writable meanwhile
        sh("sync")
        sh("umount", mnt)
        mounted = False
        sh("blockdev", "--flushbufs", dst.loop)
        fsck = sh("fsck.ext4", "-n", "-f", dst.loop, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        if mounted:
            sh("umount", mnt, check=False)
        dst.close()
    wait_hydrated(d, "fs2")
