"""A damaged chunk in the store is never served: a snapshot export's READ of it fails with
EIO (every chunk is hash-verified), and so does a restored volume's read of a chunk it has
not hydrated yet; the other chunks still read."""
import hashlib
import time

import nbd
import pytest

from snapexp_helpers import (CHUNK, connect, create_snapshot, pattern, restore_daemon, show,
                             write)
from test_snapshot_common import corrupt_chunk

SIZE = 4 << 20


def chunk_of(data_dir, d, bad_hash, writes):
    for off, data in writes:
        if hashlib.sha256(data).hexdigest() == bad_hash:
            return off // CHUNK
    raise AssertionError("corrupted an unknown chunk")


def snapshot_with_a_damaged_chunk(d):
    """Writes every 4th chunk of volume "vol", snapshots it, damages one of its chunks in the
    store (daemon stopped) and restarts; returns (snapshot id, damaged chunk, writes)."""
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    writes = [(c * CHUNK, pattern(f"c{c}", CHUNK)) for c in range(0, SIZE // CHUNK, 4)]
    write(d, "vol", writes)
    s1 = create_snapshot(d, "vol")
    assert d.stop() == 0
    bad = chunk_of(d.data_dir, d, corrupt_chunk(d.data_dir), writes)
    d.start()
    return s1, bad, writes


def test_corrupt_chunk_fails_reads_with_eio(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    s1, bad, writes = snapshot_with_a_damaged_chunk(d)
    h = connect(d, f"vol@{s1}")
    with pytest.raises(nbd.Error) as e:
        h.pread(CHUNK, bad * CHUNK)
    assert e.value.errno == "EIO"
    good = (bad + 4) % (SIZE // CHUNK)
    assert h.pread(CHUNK, good * CHUNK) == dict(writes)[good * CHUNK]
    h.shutdown()
    # A restore built on it: the damaged chunk fails on demand too.
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    h = connect(d, "r")
    with pytest.raises(nbd.Error) as e:
        h.pread(4096, bad * CHUNK)
    assert e.value.errno == "EIO"
    assert h.pread(CHUNK, good * CHUNK) == dict(writes)[good * CHUNK]
    h.shutdown()
    assert "corrupt" in d.log_text()


def test_hydration_skips_a_damaged_chunk_and_finishes_the_rest(daemon_factory, tmp_path):
    """The background hydrator meets the damaged chunk: it skips it (its reads keep failing
    with EIO, never reading a hole as zeros), hydrates every other chunk, and says so."""
    d = restore_daemon(daemon_factory, tmp_path)  # no rate limit
    s1, bad, writes = snapshot_with_a_damaged_chunk(d)
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    # Bounded wait for the hydrator's last word: no event says it has run out of chunks.
    deadline = time.monotonic() + 60
    while "hydrated all but 1 chunk(s)" not in d.log_text():
        assert time.monotonic() < deadline, d.log_text()[-2000:]
        time.sleep(0.05)
    v = show(d, "r")
    assert v["hydrated_bytes"] == v["hydrate_total_bytes"] - CHUNK
    h = connect(d, "r")
    with pytest.raises(nbd.Error) as e:
        h.pread(4096, bad * CHUNK)
    assert e.value.errno == "EIO"
    for off, data in writes:
        if off != bad * CHUNK:
            assert h.pread(CHUNK, off) == data
    h.shutdown()
