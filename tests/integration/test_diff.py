"""Changed-block diffs (issue 5): the meta context blocksnap:changed:<S1> (and qemu's
qemu:dirty-bitmap:<S1>) on the export of a later snapshot S2 reports exactly the chunks
written between S1 and S2; `snapshot diff S1 S2` agrees; an incremental backup that copies
only those ranges reproduces S2."""
import subprocess

import nbd
import pytest

from snapexp_helpers import (CHUNK, apply, chunk_round, connect, create_snapshot, diff_ranges,
                             dump_snapshot, flagged, nbdinfo_map, pattern, read_export,
                             snap_daemon, write)

SIZE = 16 << 20
BASE = [(0, pattern("base0", 3 * CHUNK)), (40 * CHUNK, pattern("base1", 5 * CHUNK))]
CHANGES = [(CHUNK + 10, pattern("c1", 100)),             # inside chunk 1
           (7 * CHUNK - 5, pattern("c2", 10)),             # straddles chunks 6 and 7
           (41 * CHUNK, pattern("c3", 2 * CHUNK)),         # chunks 41-42, aligned
           (100 * CHUNK + 3, bytes(CHUNK)),                # zeros over never-written: no change
           (200 * CHUNK, pattern("c4", 3 * CHUNK + 1)),    # 200..203
           (SIZE - 1, b"\x01")]                            # the last byte


def expected_changed():
    real = [(o, len(b)) for o, b in CHANGES if any(b)]
    return chunk_round(real, SIZE)


@pytest.fixture
def two_snapshots(daemon_factory, tmp_path):
    d = snap_daemon(daemon_factory, tmp_path)
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    write(d, "vol", BASE)
    s1 = create_snapshot(d, "vol")
    write(d, "vol", CHANGES)
    s2 = create_snapshot(d, "vol")
    image1 = bytearray(SIZE)
    apply(image1, BASE)
    image2 = bytearray(image1)
    apply(image2, CHANGES)
    return d, s1, s2, bytes(image1), bytes(image2)


def test_context_lists_older_snapshots_only(two_snapshots):
    d, s1, s2, _, _ = two_snapshots
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_uri(d.uri(f"vol@{s2}"))
    names = []
    h.opt_list_meta_context(lambda name: names.append(name) or 0)
    h.opt_abort()
    assert set(names) == {"base:allocation", f"blocksnap:changed:{s1}",
                          f"qemu:dirty-bitmap:{s1}"}


def test_changed_context_equals_written_ranges(two_snapshots):
    d, s1, s2, _, _ = two_snapshots
    want = expected_changed()
    for ctx in (f"blocksnap:changed:{s1}", f"qemu:dirty-bitmap:{s1}"):
        extents = nbdinfo_map(d, f"vol@{s2}", ctx)
        assert sum(n for _, n, _ in extents) == SIZE
        assert flagged(extents, 1) == want, ctx
    ranges = diff_ranges(d, s1, s2)
    if ranges is not None:
        assert ranges == want


def test_incremental_backup(two_snapshots, tmp_path):
    d, s1, s2, image1, image2 = two_snapshots
    backup = tmp_path / "backup.img"
    subprocess.run(["nbdcopy", d.uri(f"vol@{s1}"), str(backup)], check=True, timeout=120)
    assert backup.read_bytes() == image1
    # Ask the S2 export what changed since S1, fetch only that.
    ctx = f"blocksnap:changed:{s1}"
    h = connect(d, f"vol@{s2}", [ctx])
    assert h.can_meta_context(ctx)
    changed = []
    off = 0
    while off < SIZE:
        got = []

        def cb(metacontext, offset, entries, err):
            if metacontext == ctx:
                got.extend(zip(entries[0::2], entries[1::2]))
            return 0

        h.block_status(min(SIZE - off, 1 << 30), off, cb)
        for length, flags in got:
            if flags & 1:
                changed.append((off, length))
            off += length
    fetched = 0
    with open(backup, "r+b") as f:
        for o, n in changed:
            f.seek(o)
            f.write(h.pread(n, o))
            fetched += n
    h.shutdown()
    assert fetched == sum(n for _, n in expected_changed())
    assert backup.read_bytes() == image2
    dump = tmp_path / "s2.img"
    if dump_snapshot(d, s2, dump):
        subprocess.run(["cmp", str(dump), str(backup)], check=True)


def test_newest_snapshot_has_no_changed_context_for_itself(two_snapshots):
    d, s1, s2, _, image2 = two_snapshots
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_uri(d.uri(f"vol@{s1}"))
    names = []
    h.opt_list_meta_context(lambda name: names.append(name) or 0)
    h.opt_abort()
    assert names == ["base:allocation"]
    assert read_export(d, f"vol@{s2}", SIZE) == image2
