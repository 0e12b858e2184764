"""Helpers shared by the snapshot tests (test_snapshot_*.py); no tests here.

Writes go through libnbd (`import nbd`, /usr/bin/python3). A volume's bytes "at a snapshot's
instant" are read from its live image file <data_dir>/volumes/<id>.img while nothing writes.
"""
import hashlib
import os
import subprocess
import threading

import nbd

from harness import BUILD

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
CHUNK = 64 * KiB
CORRUPT_CHUNK = BUILD / "tests" / "tools" / "corrupt_chunk"


def connect(daemon, volume):
    h = nbd.NBD()
    h.connect_uri(daemon.uri(volume))
    return h


def write(daemon, volume, pieces):
    """pieces: iterable of (offset, bytes). Flushed before returning."""
    h = connect(daemon, volume)
    try:
        for off, data in pieces:
            h.pwrite(data, off)
        h.flush()
    finally:
        h.shutdown()


def create_volume(daemon, name, size, chunk_size=None):
    args = ["volume", "create", name, "--size", str(size)]
    if chunk_size:
        args += ["--chunk-size", str(chunk_size)]
    daemon.ctl(*args)
    return daemon.ctl_json("volume", "show", name)


def volume_file(daemon, name):
    vid = daemon.ctl_json("volume", "show", name)["id"]
    return daemon.data_dir / "volumes" / f"{vid}.img"


def sha256_file(path, size=None):
    """sha256 of the file's first `size` bytes (a shorter file reads as zero-padded)."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while size is None or done < size:
            want = MiB if size is None else min(MiB, size - done)
            block = f.read(want)
            if not block:
                break
            h.update(block)
            done += len(block)
    if size is not None and done < size:
        zeros = bytes(MiB)
        while done < size:
            n = min(MiB, size - done)
            h.update(zeros[:n])
            done += n
    return h.hexdigest()


def volume_sha(daemon, name):
    size = daemon.ctl_json("volume", "show", name)["size"]
    return sha256_file(volume_file(daemon, name), size)


def snapshot(daemon, volume, *tags):
    """Creates a snapshot, follows it to the end (--wait) and returns its final record."""
    args = ["snapshot", "create", volume, "--wait"]
    for t in tags:
        args += ["--tag", t]
    rec = daemon.ctl_json(*args)
    assert rec["state"] == "completed", rec
    return rec


def dump(daemon, snap_id, path):
    daemon.ctl("snapshot", "dump", snap_id, str(path))
    return path


def dump_sha(daemon, snap_id, path):
    dump(daemon, snap_id, path)
    try:
        return sha256_file(path)
    finally:
        os.unlink(path)


def status(daemon):
    return daemon.ctl_json("status")


def corrupt_chunk(data_dir, hash_hex=None):
    """Damages one value of CF `chunks` of a stopped daemon's RocksDB; returns its hash."""
    cmd = [str(CORRUPT_CHUNK), str(data_dir / "db")] + ([hash_hex] if hash_hex else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


class StampWriter:
    """A libnbd client writing stamped blocks continuously (aio, several in flight) in a
    thread. Block b's n-th write carries the stamp n (a global sequence number) in every
    8-byte word, so a block read back names exactly which write it holds. `events` is the
    global order of submits, acks and the caller's marks (list.append is atomic)."""

    def __init__(self, daemon, volume, size, block=4 * KiB, depth=8):
        self.h = connect(daemon, volume)
        self.block = block
        self.nblocks = size // block
        self.depth = depth
        self.events = []
        self.stop = threading.Event()
        self.error = None
        self.seq = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def stamp(self, n, b):
        return (n.to_bytes(4, "little") + b.to_bytes(4, "little")) * (self.block // 8)

    def _run(self):
        try:
            inflight = 0

            def done(n, err):
                nonlocal inflight
                inflight -= 1
                if err.value != 0:
                    self.error = f"write {n} failed: {err.value}"
                else:
                    self.events.append(("ack", n))
                return 1

            while not self.stop.is_set() or inflight:
                while inflight < self.depth and not self.stop.is_set():
                    self.seq += 1
                    n = self.seq
                    b = (n * 7919) % self.nblocks  # every block, in a scattered order
                    self.events.append(("submit", n))
                    self.h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(self.stamp(n, b))),
                                      b * self.block, completion=lambda err, n=n: done(n, err))
                    inflight += 1
                self.h.poll(-1)
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.error = repr(e)

    def block_of(self, n):
        return (n * 7919) % self.nblocks

    def start(self):
        self.thread.start()
        return self

    def mark(self, what):
        self.events.append(("mark", what))

    def join(self):
        self.stop.set()
        self.thread.join(timeout=120)
        self.h.shutdown()
        assert self.error is None, self.error
