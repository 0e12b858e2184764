"""Restore and the store (issue 5): a restored volume's snapshots are incremental against
its origin; deleting the origin mid-hydration loses nothing; once everything is deleted the
store holds nothing."""
import pytest

from snapexp_helpers import (CHUNK, apply, create_snapshot, delete_snapshot, pattern,
                             read_export, restore_daemon, show, status, wait_hydrated, write)

SIZE = 16 << 20
CHUNKS = SIZE // CHUNK  # 256


def full(d, name="vol"):
    d.ctl("volume", "create", name, "--size", str(SIZE))
    writes = [(c * CHUNK, pattern(f"full{c}", CHUNK)) for c in range(CHUNKS)]
    write(d, name, writes)
    image = bytearray(SIZE)
    apply(image, writes)
    return image


def test_first_snapshot_of_a_restore_stores_only_what_changed(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="1M")
    full(d)
    s1 = create_snapshot(d, "vol")
    before = status(d)
    assert before["chunks"] == CHUNKS
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    # Change about 1%: 3 of 256 chunks (one partially), while it still hydrates.
    changes = [(10 * CHUNK, pattern("n1", CHUNK)), (100 * CHUNK + 4096, pattern("n2", 4096)),
               (200 * CHUNK, pattern("n3", CHUNK))]
    write(d, "r", changes)
    assert show(d, "r")["hydrated_bytes"] < show(d, "r")["hydrate_total_bytes"]
    s2 = create_snapshot(d, "r")
    rec = d.ctl_json("snapshot", "show", s2)
    assert rec["chunks"] == 3
    assert rec["added_bytes"] == 3 * CHUNK
    after = status(d)
    assert after["chunks"] == CHUNKS + 3
    assert after["stored_bytes"] - before["stored_bytes"] == 3 * CHUNK


def test_delete_origin_mid_hydration_then_everything(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="2M")
    image = bytes(full(d))
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    assert show(d, "r")["hydrated_bytes"] < show(d, "r")["hydrate_total_bytes"]
    # The user sees the origin (and its volume) gone at once...
    delete_snapshot(d, s1)
    d.ctl("volume", "delete", "vol")
    assert d.ctl("snapshot", "show", s1, check=False).returncode != 0
    assert d.ctl_json("snapshot", "list") == [] or all(
        s["id"] != s1 for s in d.ctl_json("snapshot", "list"))
    # ...but the data stays until the restore no longer needs it.
    assert status(d)["chunks"] == CHUNKS
    assert read_export(d, "r", SIZE) == image
    wait_hydrated(d, "r")
    assert read_export(d, "r", SIZE) == image
    s2 = create_snapshot(d, "r")
    assert d.ctl_json("snapshot", "show", s2)["chunks"] == 0  # nothing changed since restore
    d.ctl("volume", "delete", "r")
    assert status(d)["chunks"] == CHUNKS  # s2 still reads every chunk
    delete_snapshot(d, s2)
    st = status(d)
    assert st["chunks"] == 0 and st["stored_bytes"] == 0, st
    d.restart()
    st = status(d)
    assert st["chunks"] == 0 and st["stored_bytes"] == 0, st


def test_deleting_a_hydrating_restore_frees_its_references(daemon_factory, tmp_path):
    d = restore_daemon(daemon_factory, tmp_path, rate="256K")
    full(d)
    s1 = create_snapshot(d, "vol")
    d.ctl("volume", "create", "r", "--from-snapshot", s1)
    d.ctl("volume", "delete", "r")
    d.ctl("volume", "delete", "vol")
    delete_snapshot(d, s1)
    st = status(d)
    assert st["chunks"] == 0 and st["stored_bytes"] == 0, st
    d.restart()  # no hydration state left behind to resume
    assert d.ctl_json("volume", "list") == []
    assert "hydrat" not in d.log_text().split("blocksnapd ready")[-1].lower()
