"""libnbd's API (the `nbd` module is libnbd's Python binding) against a real blocksnapd.

Covers issue 3's libnbd list: list exports, size and block sizes, random writes and reads
verified byte for byte, flush, FUA, trim then zeroes, zero with and without NO_HOLE and the
allocation each leaves, block status over holes and data, 64 aio requests in flight, and 4
connections (multi-conn) writing disjoint regions, then all reading the same image.
"""
import os
import pathlib
import random
import tempfile

import nbd
import pytest
from conftest import Daemon
from harness import stop_then_remove

MiB = 1 << 20
SIZE = 64 * MiB


@pytest.fixture
def vol(daemon):
    daemon.ctl("volume", "create", "v1", "--size", "64M")
    return daemon


def connect(uri, meta=True):
    h = nbd.NBD()
    if meta:
        h.add_meta_context("base:allocation")
    h.connect_uri(uri)
    return h


def extents(h, offset, length):
    """[(offset, length, flags)] of base:allocation over the range."""
    out = []
    pos = offset
    while pos < offset + length:
        got = []
        h.block_status(offset + length - pos, pos,
                       lambda ctx, off, e, err: got.append((ctx, off, list(e))))
        assert got and got[0][0] == "base:allocation"
        ents = got[0][2]
        for i in range(0, len(ents), 2):
            out.append((pos, ents[i], ents[i + 1]))
            pos += ents[i]
    return out


def allocated(h, offset, length):
    """True/False when the whole range is data/hole, None when mixed."""
    states = {flags & nbd.STATE_HOLE == 0 for _, _, flags in extents(h, offset, length)}
    return states.pop() if len(states) == 1 else None


def test_list_exports_with_descriptions(daemon):
    for name in ("alpha", "beta"):
        daemon.ctl("volume", "create", name, "--size", "1M")
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_uri(f"nbd://127.0.0.1:{daemon.port}")
    seen = {}
    h.opt_list(lambda name, desc: seen.__setitem__(name, desc))
    h.opt_abort()
    assert set(seen) == {"alpha", "beta"}
    assert all(d.startswith("blocksnap volume vol-") for d in seen.values())


def test_size_flags_and_block_sizes(vol):
    h = connect(vol.uri("v1"))
    assert h.get_size() == SIZE
    assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
    assert h.get_block_size(nbd.SIZE_PREFERRED) == 64 * 1024  # the chunk size
    assert h.get_block_size(nbd.SIZE_MAXIMUM) == 32 * MiB
    assert h.can_multi_conn() and h.can_flush() and h.can_fua()
    assert h.can_trim() and h.can_zero() and h.can_fast_zero() and h.can_cache()
    assert not h.is_read_only()
    assert h.can_meta_context("base:allocation")
    h.shutdown()


def test_random_writes_and_reads_verified(vol):
    rng = random.Random(1234)
    model = bytearray(SIZE)
    h = connect(vol.uri("v1"))
    for _ in range(200):
        length = rng.choice([512, 4096, 65536, 3 * 4096, 1 * MiB])
        offset = rng.randrange(0, (SIZE - length) // 512) * 512
        data = os.urandom(length)
        flags = nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0
        h.pwrite(data, offset, flags)
        model[offset:offset + length] = data
    h.flush()
    for start in range(0, SIZE, 8 * MiB):
        assert h.pread(8 * MiB, start) == bytes(model[start:start + 8 * MiB])
    h.shutdown()
    # A second connection sees the same bytes.
    h2 = connect(vol.unix_uri("v1"))
    assert h2.pread(4 * MiB, 0) == bytes(model[:4 * MiB])
    h2.shutdown()


def test_trim_then_zeroes_and_holes(vol):
    h = connect(vol.uri("v1"))
    h.pwrite(b"\xaa" * (4 * MiB), 0)
    assert allocated(h, 0, 4 * MiB) is True
    h.trim(MiB, MiB)
    assert h.pread(MiB, MiB) == bytes(MiB)
    assert allocated(h, MiB, MiB) is False
    assert h.pread(MiB, 0) == b"\xaa" * MiB
    # Trim with FUA too.
    h.trim(MiB, 2 * MiB, nbd.CMD_FLAG_FUA)
    assert h.pread(MiB, 2 * MiB) == bytes(MiB)
    h.shutdown()


def image_blocks(daemon):
    """Allocated 512-byte blocks of the volume's image file (all volumes, there is one)."""
    imgs = list((daemon.data_dir / "volumes").glob("*.img"))
    assert len(imgs) == 1
    return os.stat(imgs[0]).st_blocks


def test_zero_with_and_without_no_hole(vol):
    h = connect(vol.uri("v1"))
    h.pwrite(b"\x55" * (4 * MiB), 8 * MiB)
    h.flush()
    before = image_blocks(vol)
    # Plain zero: reads back zero and may leave a hole (ours punches one).
    h.zero(MiB, 8 * MiB)
    assert h.pread(MiB, 8 * MiB) == bytes(MiB)
    assert allocated(h, 8 * MiB, MiB) is False
    assert image_blocks(vol) <= before - MiB // 512
    # NO_HOLE: zeroes, but the range keeps its storage.
    before = image_blocks(vol)
    h.zero(MiB, 9 * MiB, nbd.CMD_FLAG_NO_HOLE)
    assert h.pread(MiB, 9 * MiB) == bytes(MiB)
    assert image_blocks(vol) >= before
    # NO_HOLE over a hole allocates it (ext4 reports the zeroed extent as unwritten, so
    # SEEK_DATA may still call it a hole: the image's block count is what tells).
    before = image_blocks(vol)
    h.zero(MiB, 20 * MiB, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
    assert image_blocks(vol) >= before + MiB // 512
    assert h.pread(MiB, 20 * MiB) == bytes(MiB)
    # FAST_ZERO either succeeds quickly or says ENOTSUP; on ext4 it succeeds.
    h.zero(MiB, 10 * MiB, nbd.CMD_FLAG_FAST_ZERO)
    assert h.pread(MiB, 10 * MiB) == bytes(MiB)
    assert h.pread(MiB, 11 * MiB) == b"\x55" * MiB
    h.shutdown()


def test_block_status_over_holes_and_data(vol):
    h = connect(vol.uri("v1"))
    assert allocated(h, 0, SIZE) is False  # a new volume is one hole
    h.pwrite(b"d" * MiB, 4 * MiB)
    h.pwrite(b"e" * MiB, 6 * MiB)
    ext = extents(h, 0, 8 * MiB)
    data = [(o, n) for o, n, f in ext if not f & nbd.STATE_HOLE]
    holes = [(o, n) for o, n, f in ext if f & nbd.STATE_HOLE]
    assert data == [(4 * MiB, MiB), (6 * MiB, MiB)]
    assert holes == [(0, 4 * MiB), (5 * MiB, MiB), (7 * MiB, MiB)]
    assert all(f == nbd.STATE_HOLE | nbd.STATE_ZERO for o, n, f in ext if f & nbd.STATE_HOLE)
    # REQ_ONE: exactly one extent.
    got = []
    h.block_status(8 * MiB, 0, lambda ctx, off, e, err: got.append(list(e)),
                   nbd.CMD_FLAG_REQ_ONE)
    assert got == [[4 * MiB, nbd.STATE_HOLE | nbd.STATE_ZERO]]
    h.shutdown()


def test_64_aio_in_flight(vol):
    h = connect(vol.uri("v1"))
    blocks = {i: os.urandom(64 * 1024) for i in range(64)}
    cookies = []
    for i, data in blocks.items():
        buf = nbd.Buffer.from_bytearray(bytearray(data))
        cookies.append(h.aio_pwrite(buf, i * 128 * 1024))
    assert h.aio_in_flight() == 64
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for c in cookies:
        assert h.aio_command_completed(c)
    bufs = {}
    for i in blocks:
        bufs[i] = nbd.Buffer(64 * 1024)
        h.aio_pread(bufs[i], i * 128 * 1024)
    assert h.aio_in_flight() == 64
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for i, data in blocks.items():
        assert bufs[i].to_bytearray() == data
    h.shutdown()


def test_multi_conn_four_writers_one_image(vol):
    handles = [connect(vol.uri("v1") if i % 2 else vol.unix_uri("v1")) for i in range(4)]
    assert all(h.can_multi_conn() for h in handles)
    region = SIZE // 4
    expected = bytearray(SIZE)
    rng = random.Random(4)
    for i, h in enumerate(handles):
        for k in range(16):
            off = i * region + k * (region // 16)
            data = rng.randbytes(256 * 1024)
            h.pwrite(data, off)
            expected[off:off + len(data)] = data
    # A FLUSH on any one connection covers the writes of all (multi-conn).
    handles[0].flush()
    images = []
    for h in handles:
        images.append(b"".join(h.pread(8 * MiB, o) for o in range(0, SIZE, 8 * MiB)))
    assert all(img == bytes(expected) for img in images)
    for h in handles:
        h.shutdown()


def test_cache_and_zero_length_requests(vol):
    h = connect(vol.uri("v1"))
    h.cache(MiB, 0)
    h.set_strict_mode(0)
    assert h.pread(0, 0) == b""
    h.pwrite(b"", 0)
    h.trim(0, 512)
    h.flush()
    h.shutdown()


def test_fua_accepted_on_every_command(vol):
    """The spec: once SEND_FUA is advertised the server MUST accept FUA on every command,
    because existing clients set it on reads and flushes too. libnbd's strict mode would
    refuse to send it, so it is switched off to send what such clients send."""
    h = connect(vol.uri("v1"))
    assert h.can_fua()
    h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_FLAGS)
    data = os.urandom(8192)
    h.pwrite(data, 4096, nbd.CMD_FLAG_FUA)
    assert h.pread(8192, 4096, nbd.CMD_FLAG_FUA) == data
    h.flush(nbd.CMD_FLAG_FUA)
    h.cache(8192, 4096, nbd.CMD_FLAG_FUA)
    seen = []
    h.block_status(8192, 4096, lambda ctx, off, ents, err: seen.append(ents) or 0,
                   nbd.CMD_FLAG_FUA)
    assert seen and seen[0][1] == 0  # data there: allocated, not zero
    h.trim(4096, 4096, nbd.CMD_FLAG_FUA)
    assert h.pread(8192, 4096) == bytes(4096) + data[4096:]
    h.shutdown()


def test_structured_read_sends_zero_blocks_as_holes(vol):
    h = connect(vol.uri("v1"))
    h.pwrite(b"z" * 8192, 64 * 1024)
    chunks = []

    def chunk(subbuf, offset, status, error):
        chunks.append((offset, len(subbuf), status))
        return 0

    buf = h.pread_structured(256 * 1024, 0, chunk)
    assert buf == bytes(64 * 1024) + b"z" * 8192 + bytes(256 * 1024 - 64 * 1024 - 8192)
    assert sorted(chunks) == [(0, 64 * 1024, nbd.READ_HOLE),
                              (64 * 1024, 8192, nbd.READ_DATA),
                              (72 * 1024, 184 * 1024, nbd.READ_HOLE)]
    # With DF the server must not fragment: one data chunk.
    chunks.clear()
    h.pread_structured(256 * 1024, 0, chunk, nbd.CMD_FLAG_DF)
    assert chunks == [(0, 256 * 1024, nbd.READ_DATA)]
    h.shutdown()


def test_option_errors_keep_the_session(vol):
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.add_meta_context("base:allocation")
    h.connect_uri(vol.uri("v1"))
    h.set_export_name("no-such-volume")
    with pytest.raises(nbd.Error):
        h.opt_info()  # NBD_REP_ERR_UNKNOWN, negotiation goes on
    with pytest.raises(nbd.Error):
        h.opt_go()
    assert h.aio_is_negotiating()
    h.set_export_name("v1")
    h.opt_go()
    assert h.get_size() == SIZE
    assert h.can_meta_context("base:allocation")
    h.shutdown()


@pytest.fixture(params=["disk", "tmpfs"])
def any_fs_daemon(request, daemon_factory):
    """A daemon whose data dir is on the test's temp dir (ext4 here), or on /dev/shm."""
    if request.param == "disk":
        yield daemon_factory()
        return
    if not pathlib.Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    shm = pathlib.Path(tempfile.mkdtemp(prefix="bs-test-", dir="/dev/shm"))
    d = Daemon(shm)
    try:
        yield d
    finally:
        stop_then_remove(d, shm)


def test_large_reads_in_flight_verified(any_fs_daemon):
    """Reads of 256 KiB and more go to io_uring's workers (on tmpfs as on ext4): many at once,
    short and long, across data and a hole, each byte compared."""
    d = any_fs_daemon.start()
    d.ctl("volume", "create", "v1", "--size", "64M")
    rng = random.Random(7)
    model = bytearray(SIZE)
    h = connect(d.uri("v1"))
    # Data in the first 40 MiB, with a 4 MiB hole left in it.
    for start in range(0, 40 * MiB, 4 * MiB):
        if start == 16 * MiB:
            continue
        data = os.urandom(4 * MiB)
        h.pwrite(data, start)
        model[start:start + 4 * MiB] = data
    reads = []
    for _ in range(48):
        length = rng.choice([256 * 1024, MiB, MiB + 4096, 3 * MiB - 512, 8 * MiB])
        offset = rng.randrange(0, (SIZE - length) // 512) * 512
        buf = nbd.Buffer(length)
        reads.append((h.aio_pread(buf, offset), buf, offset, length))
    assert h.aio_in_flight() == 48
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for cookie, buf, offset, length in reads:
        assert h.aio_command_completed(cookie)
        assert buf.to_bytearray() == model[offset:offset + length], (offset, length)
    h.shutdown()
