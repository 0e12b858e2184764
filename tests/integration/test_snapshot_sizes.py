"""Snapshot sizes follow EBS (issue 4): the first snapshot of a sparse volume stores only what
was written, an incremental one only the chunks that changed, and each dump equals the volume
at the snapshot's instant."""
import os

from test_snapshot_common import (CHUNK, GiB, MiB, create_volume, dump, dump_sha,
                                  snapshot, status, volume_sha, write)


def data_extents(path):
    """(offset, length) of the data (non-hole) regions of a sparse file."""
    out = []
    with open(path, "rb") as f:
        fd = f.fileno()
        end = os.fstat(fd).st_size
        off = 0
        while off < end:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, stop - start))
            off = stop
    return out


def test_first_snapshot_of_sparse_10g_volume_stores_50m(daemon, tmp_path):
    create_volume(daemon, "big", 10 * GiB)
    # 50 MiB written as 50 pieces of 1 MiB spread over the 10 GiB (chunk aligned).
    pieces = [(i * 200 * MiB + 3 * CHUNK, os.urandom(MiB)) for i in range(50)]
    write(daemon, "big", pieces)
    rec = snapshot(daemon, "big", "kind=first")
    assert rec["size"] == 10 * GiB
    assert rec["tags"] == {"kind": "first"}
    assert rec["progress"] == 1.0
    assert rec["added_bytes"] == 50 * MiB, rec  # aligned writes: exactly the written chunks
    assert rec["pause_us"] >= 0
    st = status(daemon)
    assert st["stored_bytes"] == 50 * MiB, st
    assert st["chunks"] == 50 * MiB // CHUNK, st

    # The dump is sparse: data only where written, and those bytes are the written ones.
    out = dump(daemon, rec["id"], tmp_path / "big.raw")
    assert os.path.getsize(out) == 10 * GiB
    assert os.stat(out).st_blocks * 512 <= 51 * MiB
    with open(out, "rb") as f:
        for off, data in pieces:
            f.seek(off)
            assert f.read(len(data)) == data
    written = {(off, len(data)) for off, data in pieces}
    for off, length in data_extents(out):
        assert any(o <= off and off + length <= o + n for o, n in written), (off, length)


def test_incremental_after_changing_one_percent(daemon, tmp_path):
    size = 256 * MiB
    create_volume(daemon, "v", size)
    write(daemon, "v", [(off, os.urandom(8 * MiB)) for off in range(0, size, 8 * MiB)])
    first = snapshot(daemon, "v")
    assert first["added_bytes"] == size, first
    sha1 = volume_sha(daemon, "v")

    # 1% of the volume: 41 chunks of 64 KiB scattered (every 100th chunk).
    nchunks = size // CHUNK
    changed = list(range(0, nchunks, 100))
    write(daemon, "v", [(c * CHUNK, os.urandom(CHUNK)) for c in changed])
    second = snapshot(daemon, "v")
    assert second["added_bytes"] == len(changed) * CHUNK, second
    assert second["chunks"] == len(changed)
    assert abs(second["added_bytes"] / size - 0.01) < 0.001
    sha2 = volume_sha(daemon, "v")

    st = status(daemon)
    assert st["stored_bytes"] == size + len(changed) * CHUNK, st

    # A sub-chunk write stores its whole chunk (chunk rounding), no more.
    write(daemon, "v", [(5 * CHUNK + 8192, b"x" * 4096)])
    third = snapshot(daemon, "v")
    assert third["added_bytes"] == CHUNK, third
    sha3 = volume_sha(daemon, "v")

    assert dump_sha(daemon, first["id"], tmp_path / "1.raw") == sha1
    assert dump_sha(daemon, second["id"], tmp_path / "2.raw") == sha2
    assert dump_sha(daemon, third["id"], tmp_path / "3.raw") == sha3


def test_dedup_two_volumes_same_content(daemon):
    data = [(off, os.urandom(MiB)) for off in range(0, 8 * MiB, MiB)]
    for name in ("a", "b"):
        create_volume(daemon, name, 64 * MiB)
        write(daemon, name, data)
    a = snapshot(daemon, "a")
    b = snapshot(daemon, "b")
    assert a["added_bytes"] == 8 * MiB
    assert b["added_bytes"] == 0, b  # every chunk was already stored
    st = status(daemon)
    assert st["stored_bytes"] == 8 * MiB, st
    assert st["chunks"] == 8 * MiB // CHUNK
    assert abs(st["dedup_ratio"] - 2.0) < 1e-9, st
