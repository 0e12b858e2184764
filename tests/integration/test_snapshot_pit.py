"""Point in time under load and copy-before-write (issue 4).

A libnbd client (StampWriter) writes 4 KiB blocks continuously, each stamped with a global
sequence number, while snapshots are taken. The events list orders submits, acks and the
moments `snapshot create` was called and returned. For every block of a snapshot's dump:
- it holds the last write to that block acknowledged before create was called, or a later one;
- it holds no write submitted after create returned;
- it is one whole write (no torn block).
"""
import hashlib
import os
import subprocess
import struct

import nbd

from harness import CTL
from snapexp_helpers import read_export, restore_daemon
from test_snapshot_common import (CHUNK, KiB, MiB, StampWriter, create_volume, dump, dump_sha,
                                  sha256_file, snapshot, volume_file, write)


def create_at_instant(daemon, volume, writer, k):
    """Runs `snapshot create VOLUME --wait`, marking when it was called and when the id was
    printed (the point in time is fixed then); returns the id once the snapshot completed."""
    writer.mark(("call", k))
    p = subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot", "create",
                          volume, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    snap_id = p.stdout.readline().strip()
    writer.mark(("ret", k))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert snap_id.startswith("snap-"), (snap_id, out, err)
    return snap_id


def check_dump(path, writer, k, base=None):
    """base: the volume's bytes before the writer started (None: zeros)."""
    events = writer.events
    call = events.index(("mark", ("call", k)))
    ret = events.index(("mark", ("ret", k)))
    acked = {n for what, n in events[:call] if what == "ack"}
    must = {}  # block -> the newest stamp acknowledged before the call
    for n in sorted(acked):
        must[writer.block_of(n)] = n
    after = [n for what, n in events[ret + 1:] if what == "submit"]
    first_after = min(after) if after else None
    with open(path, "rb") as f:
        data = f.read()
    seen = 0
    for b in range(writer.nblocks):
        block = data[b * writer.block:(b + 1) * writer.block]
        unwritten = bytes(writer.block) if base is None else base[b * writer.block:
                                                                  (b + 1) * writer.block]
        if block == unwritten:
            assert b not in must, f"block {b}: as before, but write {must[b]} was acked before"
            continue
        n, blk = struct.unpack_from("<II", block)
        assert block == writer.stamp(n, blk), f"block {b} is torn"
        assert blk == b, f"block {b} holds block {blk}'s data"
        assert n >= must.get(b, 0), f"block {b}: stamp {n} older than acked {must[b]}"
        assert first_after is None or n < first_after, \
            f"block {b}: write {n} was submitted after create returned"
        seen += 1
    return len(acked), seen


def run_instants_under_load(daemon, tmp_path, size, rounds, volume="v", base=None,
                            write_size=None, after_load=None):
    """write_size: the writer covers only the volume's first write_size bytes (default: all).
    after_load(): called once the writer stopped, before the volume is read back."""
    writer = StampWriter(daemon, volume, write_size or size).start()
    ids = []
    try:
        # Snapshots while the writer runs; each waits for a few hundred acks first so the
        # instants fall in the middle of the load (an event count, not a time).
        for k in range(rounds):
            target = sum(1 for what, _ in writer.events if what == "ack") + 300
            while sum(1 for what, _ in writer.events if what == "ack") < target:
                assert writer.thread.is_alive(), writer.error
                writer.thread.join(timeout=0.01)
            ids.append(create_at_instant(daemon, volume, writer, k))
    finally:
        writer.join()
    if after_load:
        after_load()
    totals = []
    for k, snap_id in enumerate(ids):
        out = dump(daemon, snap_id, tmp_path / f"{k}.raw")
        totals.append(check_dump(out, writer, k, base))
        os.unlink(out)
    assert all(acked > 0 for acked, _ in totals), totals
    # The writer kept going across every instant.
    submits_after_last = [n for what, n in writer.events[
        writer.events.index(("mark", ("ret", rounds - 1))):] if what == "submit"]
    assert submits_after_last
    # No write fell between two generations: one more snapshot, of the idle volume, is the
    # volume's bytes exactly (read over NBD: a restore's image file lacks what is not local).
    last = snapshot(daemon, volume)
    live = hashlib.sha256(read_export(daemon, volume, size)).hexdigest()
    assert dump_sha(daemon, last["id"], tmp_path / "last.raw") == live


def test_point_in_time_under_load(daemon, tmp_path):
    create_volume(daemon, "v", 8 * MiB)
    run_instants_under_load(daemon, tmp_path, 8 * MiB, rounds=4)


def test_point_in_time_while_writes_reach_clean_chunks(daemon, tmp_path):
    """4 KiB chunks and a writer that visits every block once before any twice: nearly every
    write is the first to its chunk since the last instant, so at each instant some writes
    are waiting for the synced batch that records their chunk dirty. The pause sends those
    back to run after the instant (they must then land in the next generation, not in
    neither)."""
    create_volume(daemon, "v", 32 * MiB, 4 * KiB)
    run_instants_under_load(daemon, tmp_path, 32 * MiB, rounds=6)


def test_point_in_time_on_a_restore_still_hydrating(daemon_factory, tmp_path):
    """The same on a volume restored from a snapshot and hydrating slowly: nearly every write
    reaches a chunk that is not local yet (filled from the store first) and clean. The
    unwritten blocks of each dump hold the origin's bytes. The writer covers the first half
    only, so the second half can become local only through the background hydration, which
    at 64 KiB/s needs 128 s for it: the load runs on a volume still hydrating however many
    writes the machine manages."""
    d = restore_daemon(daemon_factory, tmp_path, rate="64K")
    size = 16 * MiB
    base = os.urandom(size)
    create_volume(d, "origin", size, 4 * KiB)
    write(d, "origin", [(0, base)])
    origin_snap = snapshot(d, "origin")["id"]
    d.ctl("volume", "create", "v", "--from-snapshot", origin_snap)

    def still_hydrating():
        v = d.ctl_json("volume", "show", "v")
        assert v["hydrated_bytes"] < v["hydrate_total_bytes"], v

    run_instants_under_load(d, tmp_path, size, rounds=4, base=base, write_size=size // 2,
                            after_load=still_hydrating)


def test_copy_before_write(daemon, tmp_path):
    """Every chunk is overwritten right after create returns, while the copy runs; the
    snapshot still holds the old bytes. The overwrites go from the last chunk down while the
    copier sweeps up from chunk 0, so the first of them hit chunks not yet copied and are
    served by copy-before-write; where the sweep got there first the result is the same."""
    size = 128 * MiB
    create_volume(daemon, "v", size)
    old = [(off, os.urandom(8 * MiB)) for off in range(0, size, 8 * MiB)]
    write(daemon, "v", old)
    old_sha = sha256_file(volume_file(daemon, "v"), size)


    h = nbd.NBD()
    h.connect_uri(daemon.uri("v"))
    new = bytearray(os.urandom(CHUNK))
    try:
        p = subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot",
                              "create", "v", "--wait"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        snap_id = p.stdout.readline().strip()
        # Right after the instant: one write to every chunk, 32 in flight, newest chunks last
        # so that the sweep (which goes in order) is overtaken.
        cookies = []
        for c in reversed(range(size // CHUNK)):
            while h.aio_in_flight() >= 32:
                h.poll(-1)
            new[:8] = c.to_bytes(8, "little")
            cookies.append(h.aio_pwrite(nbd.Buffer.from_bytearray(new), c * CHUNK))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for ck in cookies:
            assert h.aio_command_completed(ck)
        h.flush()
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    finally:
        h.shutdown()
    rec = daemon.ctl_json("snapshot", "show", snap_id)
    assert rec["state"] == "completed"
    assert sha256_file(dump(daemon, snap_id, tmp_path / "s.raw")) == old_sha
    # ... and the volume has the new bytes everywhere.
    with open(volume_file(daemon, "v"), "rb") as f:
        for c in range(0, size // CHUNK, 97):
            f.seek(c * CHUNK)
            assert f.read(8) == c.to_bytes(8, "little")
    # The next snapshot sees the new bytes.
    s2 = snapshot(daemon, "v")
    assert s2["added_bytes"] == size


