"""`blocksnapctl snapshot dump` and DumpSnapshot(s id, h fd): the caller opens the output and
passes the fd; the daemon only writes to it (docs/DBUS.md). The image equals the volume at the
snapshot instant in a file and on stdout; a directory the daemon cannot see (its own mount
namespace, as under PrivateTmp=/ProtectHome=) works; a read-only stdout is refused by the
daemon, which keeps running; a FILE the caller cannot create fails in blocksnapctl before it
contacts the daemon."""
import hashlib
import os
import subprocess
import threading

from harness import CTL, Daemon
from test_snapshot_common import MiB, create_volume, sha256_file, snapshot, volume_sha, write

SIZE = 16 * MiB


def volume_with_snapshot(daemon):
    """A volume with data, a hole and data at the end; its snapshot and sha at that instant."""
    create_volume(daemon, "v", SIZE)
    write(daemon, "v", [(0, os.urandom(MiB)), (5 * MiB + 4096, os.urandom(8192)),
                        (SIZE - MiB, os.urandom(MiB))])
    rec = snapshot(daemon, "v")
    sha = volume_sha(daemon, "v")
    write(daemon, "v", [(0, os.urandom(MiB))])  # later writes are not in the snapshot
    return rec["id"], sha


def ctl(daemon, *args, **kwargs):
    return subprocess.run([str(CTL), "--control", str(daemon.control_path), *args],
                          timeout=120, **kwargs)


def test_dump_to_a_file_is_the_snapshot_and_sparse(daemon, tmp_path):
    snap_id, sha = volume_with_snapshot(daemon)
    out = tmp_path / "out.raw"
    out.write_bytes(b"\xff" * (SIZE + MiB))  # an existing, longer file is replaced
    p = ctl(daemon, "--json", "snapshot", "dump", snap_id, str(out), capture_output=True,
            text=True)
    assert p.returncode == 0, p.stderr
    assert '"path"' in p.stdout and str(out) in p.stdout
    assert os.path.getsize(out) == SIZE
    assert sha256_file(out) == sha
    # Holes where the snapshot has none of its chunks: far less than SIZE is allocated.
    assert os.stat(out).st_blocks * 512 < SIZE // 2


def test_dump_to_stdout_piped_into_a_checksum(daemon):
    snap_id, sha = volume_with_snapshot(daemon)
    dump = subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot",
                             "dump", snap_id, "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    summer = subprocess.run(["sha256sum"], stdin=dump.stdout, capture_output=True, text=True,
                            timeout=120)
    dump.stdout.close()
    err = dump.stderr.read()
    assert dump.wait(timeout=120) == 0, err
    assert summer.returncode == 0 and summer.stdout.split()[0] == sha


def test_dump_to_stdout_appends_to_a_redirected_file(daemon, tmp_path):
    """`>> FILE` (O_APPEND): the image follows what the file held."""
    snap_id, sha = volume_with_snapshot(daemon)
    out = tmp_path / "appended"
    out.write_bytes(b"head")
    with open(out, "ab") as f:
        p = ctl(daemon, "snapshot", "dump", snap_id, "-", stdout=f, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    assert data[:4] == b"head" and len(data) == 4 + SIZE
    assert hashlib.sha256(data[4:]).hexdigest() == sha


def test_read_only_stdout_is_refused_and_the_daemon_carries_on(daemon, tmp_path):
    snap_id, sha = volume_with_snapshot(daemon)
    out = tmp_path / "ro.raw"
    out.write_bytes(b"keep")
    with open(out, "rb") as f:
        p = ctl(daemon, "snapshot", "dump", snap_id, "-", stdout=f, stderr=subprocess.PIPE,
                text=True)
    assert p.returncode == 1
    assert p.stderr.startswith("blocksnapctl: ") and "not open for writing" in p.stderr, \
        p.stderr
    assert out.read_bytes() == b"keep"
    assert daemon.proc.poll() is None
    assert daemon.ctl_json("snapshot", "show", snap_id)["state"] == "completed"
    assert sha256_file(ctl_dump(daemon, snap_id, tmp_path / "after.raw")) == sha


def ctl_dump(daemon, snap_id, path):
    daemon.ctl("snapshot", "dump", snap_id, str(path))
    return path


def test_uncreatable_file_fails_in_the_cli_without_the_daemon(tmp_path):
    """No daemon listens on the control path: the error is the open's, not a connection's."""
    missing = tmp_path / "no" / "such" / "dir" / "x.raw"
    p = subprocess.run([str(CTL), "--control", str(tmp_path / "nobody-here.sock"), "snapshot",
                        "dump", "snap-0000000000000001", str(missing)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr == f"blocksnapctl: cannot open {missing}: No such file or directory\n"
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o500)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    tmp_path.chmod(0o755)
    p = subprocess.run([*as_nobody, str(CTL), "--control", str(tmp_path / "nobody-here.sock"),
                        "snapshot", "dump", "snap-0000000000000001", str(readonly / "x.raw")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "cannot open" in p.stderr and "Permission denied" in p.stderr, p.stderr
    assert "blocksnapd" not in p.stderr


class HiddenDirDaemon(Daemon):
    """A blocksnapd in a mount namespace of its own where `hidden` is an empty tmpfs: the
    caller's directory does not exist for the daemon, as /tmp under PrivateTmp=yes or /home
    under ProtectHome=yes in blocksnapd.service."""

    def __init__(self, tmp, hidden):
        super().__init__(tmp)
        self.hidden = hidden

    def args(self):
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount -t tmpfs -o mode=0700 tmpfs "$0" && exec "$@"', str(self.hidden),
                *super().args()]


def test_dump_into_a_directory_only_the_caller_sees(tmp_path):
    hidden = tmp_path / "caller-only"
    hidden.mkdir(mode=0o700)
    d = HiddenDirDaemon(tmp_path / "d", hidden)
    d.tmp.mkdir()
    try:
        d.start()
        snap_id, sha = volume_with_snapshot(d)
        out = hidden / "dump.raw"
        d.ctl("snapshot", "dump", snap_id, str(out))
        assert os.path.getsize(out) == SIZE
        assert sha256_file(out) == sha
        assert os.stat(out).st_uid == os.getuid()  # created by the caller
    finally:
        if d.proc is not None:
            assert d.stop() == 0, d.log_text()


def test_a_dbus_client_dumps_into_a_pipe_over_the_control_socket(daemon):
    """A client other than blocksnapctl (dbus-python, straight to the control socket) passes
    a pipe; the reader gets the whole image and EOF once the reply is in and the caller has
    closed its end (the daemon closed its copy before replying)."""
    from test_snapshot_dbus import dump_over_dbus
    snap_id, sha = volume_with_snapshot(daemon)
    r, w = os.pipe()
    digest = hashlib.sha256()
    reader = threading.Thread(target=lambda: drain(r, digest))
    reader.start()
    try:
        err = dump_over_dbus(f"unix:path={daemon.control_path}", snap_id, w, peer=True)
    finally:
        os.close(w)
        reader.join(timeout=120)
        os.close(r)
    assert err is None, err
    assert not reader.is_alive()
    assert digest.hexdigest() == sha


def drain(fd, digest):
    while True:
        block = os.read(fd, 1 << 16)
        if not block:
            return
        digest.update(block)


def test_long_calls_are_bounded_and_the_rest_refused_with_busy(daemon):
    """Dumps, verifies, diffs and status run on worker threads, at most 16 at once (some are
    open to every local user): 16 dumps into pipes nobody reads yet hold all of them, a 17th
    long call is refused with Busy, and once the pipes are read every dump completes."""
    import select
    snap_id, sha = volume_with_snapshot(daemon)
    dumps = [subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot",
                               "dump", snap_id, "-"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(16)]
    try:
        # A worker has started once its pipe holds bytes (the 16 MiB image cannot fit).
        waiting = {p.stdout.fileno() for p in dumps}
        while waiting:
            ready, _, _ = select.select(list(waiting), [], [], 60)
            assert ready, "a dump never started"
            waiting -= set(ready)
        p = ctl(daemon, "snapshot", "verify", snap_id, capture_output=True, text=True)
        assert p.returncode == 1
        assert "too many snapshot operations in progress (16)" in p.stderr, p.stderr
    finally:
        digests = [hashlib.sha256() for _ in dumps]
        readers = [threading.Thread(target=drain, args=(d.stdout.fileno(), h))
                   for d, h in zip(dumps, digests)]
        for t in readers:
            t.start()
        for t in readers:
            t.join(timeout=120)
        codes = [d.wait(timeout=120) for d in dumps]
    assert codes == [0] * 16
    assert all(h.hexdigest() == sha for h in digests)
    p = ctl(daemon, "snapshot", "verify", snap_id, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_sigterm_ends_a_dump_into_a_stalled_pipe(daemon):
    """A dump into a pipe whose reader neither reads nor exits does not hold the daemon's
    stop: it is cancelled, the daemon exits 0, and the caller gets an error."""
    import select
    snap_id, _ = volume_with_snapshot(daemon)
    dump = subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot", "dump",
                             snap_id, "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([dump.stdout], [], [], 60)  # the worker is writing
        assert ready, "the dump never started"
        assert daemon.stop() == 0
        assert "blocksnapd stopped" in daemon.log_text()
        assert dump.wait(timeout=60) == 1
        assert dump.stderr.read().decode().startswith("blocksnapctl: ")
    finally:
        dump.kill()
        dump.wait()
        dump.stdout.close()
        dump.stderr.close()
