"""A volume as a real block device without /dev/nbdX: nbdfuse exposes the export as a file,
losetup turns it into a block device (TESTING.md). Context managers that always clean up
(umount, losetup -d, fusermount -u, nbdfuse by pid), also when the test fails."""
import contextlib
import hashlib
import pathlib
import subprocess
import time

MiB = 1 << 20


def sh(*cmd, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def _wait_for_pidfile(path, proc, deadline_s=30):
    """nbdfuse writes its pidfile once it serves; it has no other readiness signal."""
    end = time.monotonic() + deadline_s
    while not path.exists():
        assert proc.poll() is None, f"nbdfuse exited {proc.returncode}: {proc.stderr.read()}"
        assert time.monotonic() < end, "nbdfuse did not become ready"
        time.sleep(0.05)


@contextlib.contextmanager
def loop_device(path, readonly=False):
    """losetup of a file; yields the /dev/loopN path."""
    loop = sh("losetup", *(["-r"] if readonly else []), "-f", "--show", path).stdout.strip()
    try:
        yield loop
    finally:
        sh("losetup", "-d", loop, check=False)


@contextlib.contextmanager
def nbd_block_device(uri, workdir, connections=1):
    """nbdfuse of `uri` under workdir, then a loop device on it; yields the loop path."""
    workdir = pathlib.Path(workdir)
    fusedir, pidfile = workdir / "fuse", workdir / "nbdfuse.pid"
    fusedir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["nbdfuse", "-C", str(connections), "-P", str(pidfile),
                             str(fusedir / "dev"), uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_pidfile(pidfile, proc)
        with loop_device(fusedir / "dev") as loop:
            yield loop
    finally:
        sh("fusermount3", "-u", fusedir, check=False)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


@contextlib.contextmanager
def mounted(device, mountpoint, options=None):
    mountpoint = pathlib.Path(mountpoint)
    mountpoint.mkdir(parents=True, exist_ok=True)
    sh("mount", *(["-o", options] if options else []), device, mountpoint)
    try:
        yield mountpoint
    finally:
        sh("umount", mountpoint, check=False)
