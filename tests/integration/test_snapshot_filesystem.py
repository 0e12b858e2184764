"""A snapshot of a mounted ext4 (issue 4): files written and synced, `fsfreeze -f`, snapshot,
`fsfreeze -u`; the dump passes `fsck.ext4 -n -f` and, loop-mounted read-only, holds the same
files. No /dev/nbdX here: nbdfuse + losetup (TESTING.md)."""
import hashlib
import json
import os
import subprocess
import time

from test_snapshot_common import MiB, create_volume, dump


def sh(*cmd, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def wait_for_file(path, proc, deadline_s=30):
    """nbdfuse writes its pidfile once it serves."""
    end = time.monotonic() + deadline_s
    while not path.exists():
        assert proc.poll() is None, f"nbdfuse exited {proc.returncode}"
        assert time.monotonic() < end, "nbdfuse did not become ready"
        time.sleep(0.05)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ext4_snapshot_while_mounted(daemon, tmp_path):
    create_volume(daemon, "fs", 256 * MiB)
    fusedir, mnt, pidfile = tmp_path / "fuse", tmp_path / "mnt", tmp_path / "nbdfuse.pid"
    mnt2 = tmp_path / "mnt2"
    for d in (fusedir, mnt, mnt2):
        d.mkdir()
    proc = subprocess.Popen(["nbdfuse", "-P", str(pidfile), str(fusedir / "dev"),
                             daemon.uri("fs")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    loop = loop2 = None
    mounted = mounted2 = frozen = False
    try:
        wait_for_file(pidfile, proc)
        loop = sh("losetup", "-f", "--show", fusedir / "dev").stdout.strip()
        sh("mkfs.ext4", "-q", loop)
        sh("mount", loop, mnt)
        mounted = True
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
        frozen = True
        snap_id = daemon.ctl("snapshot", "create", "fs").stdout.strip()
        sh("fsfreeze", "-u", mnt)
        frozen = False
        # Keep using the filesystem while the snapshot copies: none of it may leak in.
        (mnt / "after.txt").write_text("written after the snapshot")
        big.write_bytes(os.urandom(MiB))
        sh("sync")
        done = snapshot_wait(daemon, snap_id)
        assert done["state"] == "completed", done

        image = dump(daemon, snap_id, tmp_path / "fs.raw")
        fsck = sh("fsck.ext4", "-n", "-f", image, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        loop2 = sh("losetup", "-r", "-f", "--show", image).stdout.strip()
        sh("mount", "-o", "ro,noload", loop2, mnt2)
        mounted2 = True
        for name, digest in sums.items():
            assert sha256(mnt2 / name) == digest, name
        assert not (mnt2 / "after.txt").exists()
    finally:
        if frozen:
            sh("fsfreeze", "-u", mnt, check=False)
        if mounted2:
            sh("umount", mnt2, check=False)
        if loop2:
            sh("losetup", "-d", loop2, check=False)
        if mounted:
            sh("umount", mnt, check=False)
        if loop:
            sh("losetup", "-d", loop, check=False)
        sh("fusermount3", "-u", fusedir, check=False)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def snapshot_wait(daemon, snap_id):
    """WaitSnapshot through busctl on the control socket (answered when no longer pending)."""
    p = subprocess.run(["busctl", f"--address=unix:path={daemon.control_path}", "--json=short",
                        "call", "org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Manager",
                        "WaitSnapshot", "s", snap_id], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return {k: v["data"] for k, v in json.loads(p.stdout)["data"][0].items()}
