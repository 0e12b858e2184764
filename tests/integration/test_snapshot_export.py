"""Snapshot exports: every completed snapshot is a read-only NBD export "<volume>@<id>"
(issue 5). Listing, reading against the snapshot's contents (qemu-img compare), EPERM on
writes, holes in BLOCK_STATUS, CACHE, several concurrent readers."""
import hashlib
import json
import subprocess
import threading

import nbd
import pytest

from snapexp_helpers import (CHUNK, apply, connect, create_snapshot, delete_snapshot,
                             dump_snapshot, flagged, nbdinfo_map, pattern, read_export,
                             snap_daemon, write)

SIZE = 8 << 20
WRITES = [(0, pattern("a", 4096)), (3 * CHUNK + 100, pattern("b", 2 * CHUNK)),
          (SIZE - 4096, pattern("c", 4096))]


@pytest.fixture
def snap1(daemon_factory, tmp_path):
    d = snap_daemon(daemon_factory, tmp_path)
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    write(d, "vol", WRITES)
    image = bytearray(SIZE)
    apply(image, WRITES)
    s1 = create_snapshot(d, "vol")
    return d, s1, bytes(image)


def test_listed_with_description(snap1):
    d, s1, _ = snap1
    p = subprocess.run(["nbdinfo", "--json", "--list", f"nbd://127.0.0.1:{d.port}"],
                       capture_output=True, text=True, timeout=60, check=True)
    exports = {e["export-name"]: e for e in json.loads(p.stdout)["exports"]}
    assert "vol" in exports
    e = exports[f"vol@{s1}"]
    assert s1 in e["description"] and "read-only" in e["description"]
    assert e["is_read_only"] is True
    assert e["export-size"] == SIZE
    assert e["can_multi_conn"] is True


def test_reads_equal_the_snapshot_and_not_the_live_volume(snap1, tmp_path):
    d, s1, image = snap1
    # The live volume moves on; the export keeps the instant.
    write(d, "vol", [(0, pattern("later", 2 * CHUNK))])
    assert read_export(d, f"vol@{s1}", SIZE) == image
    expected = tmp_path / "expected.img"
    expected.write_bytes(image)
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(expected),
                    d.uri(f"vol@{s1}")], check=True, timeout=120)
    dump = tmp_path / "dump.img"
    if dump_snapshot(d, s1, dump):
        subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(dump),
                        d.uri(f"vol@{s1}")], check=True, timeout=120)


def test_writes_trims_zeroes_fail_with_eperm(snap1):
    d, s1, image = snap1
    h = connect(d, f"vol@{s1}")
    assert h.is_read_only()
    h.set_strict_mode(0)  # let the requests reach the server
    for op in (lambda: h.pwrite(b"x" * 4096, 0), lambda: h.trim(4096, 0),
               lambda: h.zero(4096, 0)):
        with pytest.raises(nbd.Error) as e:
            op()
        assert e.value.errno == "EPERM"
    assert h.pread(4096, 0) == image[:4096]
    h.shutdown()
    p = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0xab 0 64k", d.uri(f"vol@{s1}")],
                       capture_output=True, text=True, timeout=60)
    assert "Operation not permitted" in p.stdout + p.stderr or p.returncode != 0


def test_map_shows_holes_where_nothing_was_written(daemon_factory, tmp_path):
    d = snap_daemon(daemon_factory, tmp_path)
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    # chunk 2 data, chunk 5 written with zeros (a zero chunk is a hole), chunk 9 data.
    write(d, "vol", [(2 * CHUNK, pattern("x", CHUNK)), (5 * CHUNK + 7, bytes(1000)),
                     (9 * CHUNK + 512, pattern("y", 10))])
    s1 = create_snapshot(d, "vol")
    extents = nbdinfo_map(d, f"vol@{s1}")
    assert sum(n for _, n, _ in extents) == SIZE
    data = [(o, n) for o, n, t in extents if not t & 1]
    assert data == [(2 * CHUNK, CHUNK), (9 * CHUNK, CHUNK)]
    assert flagged(extents, 1) == [(0, 2 * CHUNK), (3 * CHUNK, 6 * CHUNK),
                                   (10 * CHUNK, SIZE - 10 * CHUNK)]
    assert all(t & 2 for _, _, t in extents if t & 1)  # holes read as zeros


def test_structured_reads_send_holes(snap1):
    d, s1, image = snap1
    h = connect(d, f"vol@{s1}")
    assert h.get_structured_replies_negotiated()
    chunks = []

    def cb(subbuf, offset, status, error):
        chunks.append((offset, len(subbuf), status))
        return 0

    buf = h.pread_structured(4 * CHUNK, 0, cb)
    assert bytes(buf) == image[:4 * CHUNK]
    assert any(s == nbd.READ_HOLE for _, _, s in chunks)
    h.shutdown()


def test_concurrent_readers_and_cache(snap1):
    d, s1, image = snap1
    want = hashlib.sha256(image).hexdigest()
    results, errors = [], []

    def reader(i):
        try:
            h = connect(d, f"vol@{s1}")
            if i == 0:
                h.cache(SIZE, 0)
            got = bytearray()
            for off in range(0, SIZE, 256 << 10):
                got += h.pread(256 << 10, off)
            h.shutdown()
            results.append(hashlib.sha256(got).hexdigest())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert results == [want] * 6
    p = subprocess.run(["nbdinfo", "--can", "multi-conn", d.uri(f"vol@{s1}")], timeout=60)
    assert p.returncode == 0


def test_unknown_snapshot_exports_are_refused(snap1):
    d, s1, _ = snap1
    for name in (f"other@{s1}", "vol@snap-00000000000000ff", "vol@", f"@{s1}"):
        h = nbd.NBD()
        with pytest.raises(nbd.Error):
            h.connect_uri(d.uri(name))


def test_small_cache_and_one_reader_from_config(daemon_factory, tmp_path):
    """`export_cache` and `export_readers` from the config file: with a cache smaller than
    the snapshot's data and a single store reader, concurrent readers still get exactly the
    snapshot's bytes (chunks are evicted and read again)."""
    cfg = tmp_path / "blocksnapd.yaml"
    cfg.write_text("export_cache: 4M\nexport_readers: 1\n")
    d = snap_daemon(daemon_factory, tmp_path, extra_args=["--config", str(cfg)])
    size = 16 << 20
    d.ctl("volume", "create", "big", "--size", str(size))
    writes = [(off, pattern(f"w{off}", CHUNK)) for off in range(0, size, 2 * CHUNK)]
    write(d, "big", writes)
    image = bytearray(size)
    apply(image, writes)
    s = create_snapshot(d, "big")
    want = hashlib.sha256(image).hexdigest()
    got = []

    def reader():
        got.append(hashlib.sha256(read_export(d, f"big@{s}", size)).hexdigest())

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got == [want] * 3


def test_deleted_snapshot_export_fails_instead_of_serving_other_snapshots(daemon_factory,
                                                                           tmp_path):
    """A connected export of a snapshot that is then deleted answers ESHUTDOWN, never the
    bytes of an older snapshot that a read at its version would find once its block map
    entries are collected (docs/NBD.md, "Snapshot exports")."""
    d = snap_daemon(daemon_factory, tmp_path)
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    gen = {g: [(c * CHUNK, pattern(f"{g}{c}", CHUNK)) for c in range(4)] for g in "abc"}
    write(d, "vol", gen["a"])
    s1 = create_snapshot(d, "vol")
    write(d, "vol", gen["b"])
    s2 = create_snapshot(d, "vol")
    write(d, "vol", gen["c"])  # s2's entries are no longer the volume's newest: collectable
    s3 = create_snapshot(d, "vol")

    h = connect(d, f"vol@{s2}")
    other = connect(d, f"vol@{s1}")
    # Before the delete: s2's own bytes (chunk 0 only: the others stay out of the cache).
    assert h.pread(CHUNK, 0) == gen["b"][0][1]
    assert other.pread(CHUNK, CHUNK) == gen["a"][1][1]

    delete_snapshot(d, s2)
    # Chunk 1 is not cached: a read at s2's version would now find s1's entry.
    for off, length in ((CHUNK, CHUNK), (0, CHUNK), (2 * CHUNK, 4096), (SIZE - 4096, 4096)):
        with pytest.raises(nbd.Error) as e:
            h.pread(length, off)
        assert e.value.errno == "ESHUTDOWN", (off, e.value)
    h.shutdown()
    # The other snapshots' exports are unaffected, and s2 is no export any more.
    assert other.pread(CHUNK, CHUNK) == gen["a"][1][1]
    other.shutdown()
    assert read_export(d, f"vol@{s3}", 4 * CHUNK) == b"".join(b for _, b in gen["c"])
    with pytest.raises(nbd.Error):
        connect(d, f"vol@{s2}")
