"""Restore (issue 5): a volume created from a snapshot is served at once, reads what the
snapshot holds (from the store until hydrated), hydrates in the background, keeps the
client's writes, resumes hydrating after a restart, can be larger than the snapshot."""
import hashlib
import os
import random
import subprocess

import nbd
import pytest

from harness import BUILD
from snapexp_helpers import (CHUNK, apply, connect, create_snapshot, pattern, read_export,
                             restore_daemon, show, wait_hydrated, write)

DROP_DIRTY_STATE = BUILD / "tests" / "tools" / "drop_dirty_state"

SIZE = 8 << 20


def seeded(d, name="vol", size=SIZE, seed="s"):
    """A volume with data in every other chunk, and a zero chunk; returns its image."""
    d.ctl("volume", "create", name, "--size", str(size))
    writes = [(c * CHUNK, pattern(f"{seed}{c}", CHUNK)) for c in range(0, size // CHUNK, 2)]
    writes.append((5 * CHUNK, bytes(CHUNK)))
    write(d, name, writes)
    image = bytearray(size)
    apply(image, writes)
    return bytes(image)


def test_restore_reads_the_snapshot_at_once(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="128K")
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    write(d, "vol", [(0, pattern("later", CHUNK))])  # the origin moves on
    rid = d.ctl("volume", "create", "r", "--from-snapshot", s1).stdout.strip()
    v = show(d, "r")
    assert v["id"] == rid and v["origin_snapshot"] == s1
    assert v["state"] == "available"  # not a fast restore
    assert v["hydrate_total_bytes"] == (SIZE // CHUNK // 2) * CHUNK
    assert v["hydrated_bytes"] < v["hydrate_total_bytes"]  # 128K/s: far from done
    assert read_export(d, "r", SIZE) == image
    text = d.ctl("volume", "show", "r").stdout
    assert "Origin" in text and s1 in text and "Hydrated" in text


def test_writes_during_hydration(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="512K")
    image = bytearray(seeded(d))
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    rnd = random.Random(5)
    h = connect(d, "r")
    for i in range(60):
        off = rnd.randrange(0, SIZE // 4096 - 4) * 4096
        data = pattern(f"w{i}", 4096 * rnd.randint(1, 4))
        h.pwrite(data, off)
        image[off:off + len(data)] = data
        if i % 7 == 0:  # reads in between see snapshot + writes so far
            got = h.pread(2 * CHUNK, off // CHUNK * CHUNK)
            assert got == bytes(image[off // CHUNK * CHUNK:off // CHUNK * CHUNK + 2 * CHUNK])
    h.flush()
    h.shutdown()
    assert show(d, "r")["hydrated_bytes"] < show(d, "r")["hydrate_total_bytes"]
    wait_hydrated(d, "r")
    got = read_export(d, "r", SIZE)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(bytes(image)).hexdigest()


def test_hydration_resumes_after_restart(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="1M")
    image = bytearray(seeded(d))
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    write(d, "r", [(3 * CHUNK + 4096, pattern("mine", 4096))])
    apply(image, [(3 * CHUNK + 4096, pattern("mine", 4096))])
    before = show(d, "r")
    assert before["hydrated_bytes"] < before["hydrate_total_bytes"]
    d.restart()
    after = show(d, "r")
    assert after["origin_snapshot"] == s1
    assert after["hydrate_total_bytes"] == before["hydrate_total_bytes"]
    assert read_export(d, "r", SIZE) == bytes(image)
    wait_hydrated(d, "r")
    assert read_export(d, "r", SIZE) == bytes(image)
    d.restart()
    v = show(d, "r")
    assert v["state"] == "available" and v["hydrated_bytes"] == v["hydrate_total_bytes"]


def test_fast_restore_reports_complete_and_file_holds_every_chunk(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")  # --hydrate ignores the rate
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    out = d.ctl_json("volume", "create", "r", "--from-snapshot", s1, "--hydrate")
    assert out["state"] in ("hydrating", "available")
    v = wait_hydrated(d, "r", timeout=60)
    img = d.data_dir / "volumes" / f"{v['id']}.img"
    assert img.read_bytes() == image  # every non-zero chunk is in the file itself


def test_larger_restore_reads_zeros_in_the_tail(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path)
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "big", "--from-snapshot", s1, "--size", str(2 * SIZE))
    assert show(d, "big")["size"] == 2 * SIZE
    assert read_export(d, "big", 2 * SIZE) == image + bytes(SIZE)
    p = d.ctl("volume", "create", "small", "--from-snapshot", s1, "--size", str(SIZE // 2),
              check=False)
    assert p.returncode != 0 and "at least" in p.stderr
    assert d.ctl("volume", "show", "small", check=False).returncode != 0


def test_restore_errors(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path)
    seeded(d)
    s1 = create_snapshot(d, "vol")
    for args, needle in ((["r", "--from-snapshot", "snap-00000000000000ff"], "not found"),
                         (["vol", "--from-snapshot", s1], "exists"),
                         (["r", "--hydrate", "--size", "1M"], "--from-snapshot"),
                         (["r", "--from-snapshot", s1, "--chunk-size", "4K"], "chunk")):
        p = d.ctl("volume", "create", *args, check=False)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    assert [v["name"] for v in d.ctl_json("volume", "list")] == ["vol"]


def test_block_status_and_copies_see_unhydrated_data(daemon_factory, tmp_path):
    """Chunks not in the file yet must not look like holes: a sparse-aware copy (nbdcopy,
    qemu-img) of a hydrating restore is the snapshot."""
    import subprocess
    from snapexp_helpers import nbdinfo_map
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    assert show(d, "r")["hydrated_bytes"] < show(d, "r")["hydrate_total_bytes"]
    extents = nbdinfo_map(d, "r")
    data = [(o, n) for o, n, t in extents if not t & 1]
    # Every even chunk has data in the snapshot (chunk 5 was written with zeros: a hole).
    covered = set()
    for o, n in data:
        covered.update(range(o // CHUNK, (o + n) // CHUNK))
    assert set(range(0, SIZE // CHUNK, 2)) <= covered
    out = tmp_path / "copy.img"
    subprocess.run(["nbdcopy", d.uri("r"), str(out)], check=True, timeout=120)
    assert out.read_bytes() == image


def test_rescan_leaves_unhydrated_chunks_alone(daemon_factory, tmp_path):
    """A restore still hydrating loses its durable dirty state (deleted from RocksDB while
    the daemon is stopped, as damage would). The next start rescans its file against its
    block map. Chunks not hydrated yet are holes in the file, not zeros of the volume: they
    stay clean, while the chunks the client wrote are found changed. Its next snapshot, and
    the volume, read exactly the snapshot's bytes plus the writes."""
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    image = bytearray(seeded(d))
    s1 = create_snapshot(d, "vol")
    rid = d.ctl("volume", "create", "r", "--from-snapshot", s1).stdout.strip()
    # Chunk 2 has data in s1 (filled before the partial write lands); chunk 1 has none.
    mine = [(2 * CHUNK + 4096, pattern("mine", 4096)), (1 * CHUNK, pattern("new", CHUNK))]
    write(d, "r", mine)
    apply(image, mine)
    d.stop()
    subprocess.run([str(DROP_DIRTY_STATE), str(d.data_dir / "db"), rid], check=True,
                   timeout=60)
    d.start()
    assert "rescanning it against its last snapshot" in d.log_text()
    v = show(d, "r")
    assert v["hydrated_bytes"] < v["hydrate_total_bytes"]  # 64K/s: most chunks still holes
    s2 = create_snapshot(d, "r")
    assert read_export(d, f"r@{s2}", SIZE) == bytes(image)
    assert read_export(d, "r", SIZE) == bytes(image)


def open_fds_to(pid, path):
    """The daemon's fds whose target is `path` (" (deleted)" appended once unlinked)."""
    out = []
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if target == str(path) or target == f"{path} (deleted)":
            out.append(target)
    return out


def test_deleting_a_hydrating_restore_releases_its_image(daemon_factory, tmp_path):
    """Deleted while hydrating (64K/s: far from done): the hydration stops and lets the
    image go, so the deleted file's space is freed now, not at the next restart."""
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    rid = d.ctl("volume", "create", "r", "--from-snapshot", s1).stdout.strip()
    v = show(d, "r")
    assert v["hydrated_bytes"] < v["hydrate_total_bytes"]
    img = d.data_dir / "volumes" / f"{rid}.img"
    assert open_fds_to(d.pid, img)  # served: the volume holds its image open
    d.ctl("volume", "delete", "r")
    assert not img.exists()
    assert open_fds_to(d.pid, img) == []
    # The snapshot and its volume are untouched; the name can be restored again.
    assert read_export(d, f"vol@{s1}", SIZE) == image
    d.ctl("volume", "create", "r", "--from-snapshot", s1, "--hydrate")
    wait_hydrated(d, "r")
    assert read_export(d, "r", SIZE) == image


def test_deleting_a_hydrated_restore_releases_its_image(daemon_factory, tmp_path):
    """A fast restore that completed, then deleted: no hydration is left holding its image."""
    d = restore_daemon(daemon_factory, tmp_path)
    seeded(d)
    s1 = create_snapshot(d, "vol")
    d.ctl_json("volume", "create", "r", "--from-snapshot", s1, "--hydrate")
    v = wait_hydrated(d, "r", timeout=60)
    img = d.data_dir / "volumes" / f"{v['id']}.img"
    assert open_fds_to(d.pid, img)  # served: the volume holds its image open
    d.ctl("volume", "delete", "r")
    assert open_fds_to(d.pid, img) == []


def test_recreated_image_of_a_hydrating_restore_is_filled_again(daemon_factory, tmp_path):
    """The image of a restore still hydrating is deleted by hand while the daemon is down:
    the next start recreates it empty and fills every chunk again, also those filled before
    (their local bits went with the old file), so the volume reads the snapshot, not zeros."""
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    image = seeded(d)
    s1 = create_snapshot(d, "vol")
    rid = d.ctl("volume", "create", "r", "--from-snapshot", s1).stdout.strip()
    h = connect(d, "r")
    for c in (4, 10, 30):  # filled on demand, far ahead of the slow background fill
        assert h.pread(CHUNK, c * CHUNK) == image[c * CHUNK:(c + 1) * CHUNK]
    h.shutdown()
    v = show(d, "r")
    assert v["hydrated_bytes"] < v["hydrate_total_bytes"]
    assert d.stop() == 0
    os.unlink(d.data_dir / "volumes" / f"{rid}.img")
    d.start()
    assert "image was recreated" in d.log_text()
    got = read_export(d, "r", SIZE)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(image).hexdigest()
