"""kill -9 while a restored volume hydrates and a client writes: after the restart the
volume reads snapshot + every flushed write, hydration resumes and completes without
overwriting a write, and the first snapshot holds exactly the written chunks."""
from snapexp_helpers import (CHUNK, apply, connect, create_snapshot, pattern, read_export,
                             restore_daemon, show, wait_hydrated)

SIZE = 8 << 20


def test_kill9_during_hydration(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="512K")
    d.ctl("volume", "create", "vol", "--size", str(SIZE))
    h = connect(d, "vol")
    for c in range(SIZE // CHUNK):
        h.pwrite(pattern(f"o{c}", CHUNK), c * CHUNK)
    h.flush()
    h.shutdown()
    image = bytearray(b"".join(pattern(f"o{c}", CHUNK) for c in range(SIZE // CHUNK)))
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    # Partial writes into chunks far from the hydrator's front (it goes in order).
    writes = [(c * CHUNK + 4096 * (c % 5), pattern(f"w{c}", 8192)) for c in (90, 100, 101, 127)]
    h = connect(d, "r")
    for off, data in writes:
        h.pwrite(data, off)
    h.flush()
    h.shutdown()
    apply(image, writes)
    assert show(d, "r")["hydrated_bytes"] < show(d, "r")["hydrate_total_bytes"]
    d.kill9()
    d.start()
    assert read_export(d, "r", SIZE) == bytes(image)
    wait_hydrated(d, "r")
    assert read_export(d, "r", SIZE) == bytes(image)
    s2 = create_snapshot(d, "r")
    assert d.ctl_json("snapshot", "show", s2)["chunks"] == 4
