"""blocksnapctl snapshot ... and status: the CLI contract (DESIGN.md §7) and its errors."""
import json
import os
import subprocess

from harness import CTL
from test_snapshot_common import CHUNK, MiB, create_volume, snapshot, write

SNAP_KEYS = {"id", "volume", "volume_id", "state", "error", "created", "tags", "size",
             "added_bytes", "progress", "chunks", "chunk_size", "pause_us", "chunks_done",
             "chunks_total", "bytes_done", "bytes_total", "locked"}


def fails(daemon, *args):
    p = daemon.ctl(*args, check=False)
    assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blocksnapctl: "), p.stderr
    return lines[0]


def test_create_prints_id_and_show_list_json(daemon):
    create_volume(daemon, "v", 16 * MiB)
    write(daemon, "v", [(0, os.urandom(MiB))])
    p = daemon.ctl("snapshot", "create", "v", "--tag", "who=test", "--wait")
    snap_id = p.stdout.strip().splitlines()[0]
    assert snap_id.startswith("snap-")

    rec = daemon.ctl_json("snapshot", "show", snap_id)
    assert SNAP_KEYS <= set(rec), set(rec)
    assert rec["id"] == snap_id and rec["volume"] == "v" and rec["state"] == "completed"
    assert rec["created"].endswith("Z") or "+" in rec["created"]
    assert rec["tags"] == {"who": "test"}
    assert rec["size"] == 16 * MiB and rec["added_bytes"] == MiB and rec["progress"] == 1.0
    assert rec["chunks_done"] == rec["chunks_total"]

    second = snapshot(daemon, "v")
    listed = daemon.ctl_json("snapshot", "list")
    assert [s["id"] for s in listed] == [snap_id, second["id"]]  # oldest first
    assert [s["id"] for s in daemon.ctl_json("snapshot", "list", "v")] == [snap_id, second["id"]]

    table = daemon.ctl("snapshot", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "VOLUME", "STATE", "LOCKED", "CREATED", "SIZE", "ADDED",
                                "PROGRESS", "TAGS"]
    assert snap_id in table[1] and "who=test" in table[1] and "100%" in table[1]
    text = daemon.ctl("snapshot", "show", snap_id).stdout
    assert "completed" in text and "who=test" in text

    # Without --wait the create returns at the instant; --json prints the (maybe pending)
    # record.
    rec3 = daemon.ctl_json("snapshot", "create", "v")
    assert rec3["state"] in ("pending", "completed")


def test_tag_delete_and_errors(daemon):
    create_volume(daemon, "v", 16 * MiB)
    rec = snapshot(daemon, "v", "a=1", "b=2")
    tagged = daemon.ctl_json("snapshot", "tag", rec["id"], "c=3", "--untag", "a")
    assert tagged["tags"] == {"b": "2", "c": "3"}
    assert daemon.ctl_json("snapshot", "show", rec["id"])["tags"] == {"b": "2", "c": "3"}

    assert "snap-00000000000000ff" in fails(daemon, "snapshot", "show", "snap-00000000000000ff")
    fails(daemon, "snapshot", "show", "nonsense")
    fails(daemon, "snapshot", "create", "missing-volume")
    fails(daemon, "snapshot", "list", "missing-volume")
    fails(daemon, "snapshot", "tag", rec["id"], "bad key=1")
    p = daemon.ctl("snapshot", "tag", rec["id"], check=False)
    assert p.returncode == 2

    gone = daemon.ctl_json("snapshot", "delete", rec["id"])
    assert gone["id"] == rec["id"]
    fails(daemon, "snapshot", "show", rec["id"])
    fails(daemon, "snapshot", "delete", rec["id"])
    assert daemon.ctl_json("snapshot", "list") == []


def test_dump_relative_path_verify_ok_and_diff(daemon, tmp_path):
    create_volume(daemon, "v", 16 * MiB)
    write(daemon, "v", [(0, os.urandom(4 * MiB))])
    s1 = snapshot(daemon, "v")
    write(daemon, "v", [(CHUNK, os.urandom(2 * CHUNK)), (10 * MiB + 8192, os.urandom(4096)),
                        (16 * MiB - CHUNK, os.urandom(CHUNK))])
    s2 = snapshot(daemon, "v")

    # A relative FILE is opened by blocksnapctl, in its cwd (the daemon gets the fd).
    p = subprocess.run([str(CTL), "--control", str(daemon.control_path), "snapshot", "dump",
                        s2["id"], "out.raw"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert os.path.getsize(tmp_path / "out.raw") == 16 * MiB

    v = daemon.ctl("snapshot", "verify", s1["id"])
    assert v.stdout.strip() == f"{s1['id']}: ok"
    assert daemon.ctl_json("snapshot", "verify", s2["id"]) == {"id": s2["id"], "ok": True,
                                                                "bad": []}

    runs = daemon.ctl_json("snapshot", "diff", s1["id"], s2["id"])
    assert runs == [{"offset": CHUNK, "length": 2 * CHUNK},
                    {"offset": 10 * MiB, "length": CHUNK},
                    {"offset": 16 * MiB - CHUNK, "length": CHUNK}]
    assert daemon.ctl_json("snapshot", "diff", s2["id"], s1["id"]) == runs
    table = daemon.ctl("snapshot", "diff", s1["id"], s2["id"]).stdout.splitlines()
    assert table[0].split() == ["OFFSET", "LENGTH"] and len(table) == 4
    assert daemon.ctl_json("snapshot", "diff", s2["id"], s2["id"]) == []


def test_status_human_and_json(daemon):
    st = daemon.ctl_json("status")
    assert st["chunks"] == 0 and st["stored_bytes"] == 0
    assert {"stored_bytes", "chunks", "logical_bytes", "dedup_ratio"} <= set(st)
    text = daemon.ctl("status").stdout
    assert "Chunks" in text and "Dedup ratio" in text


def test_dbus_wait_and_signals_via_busctl(daemon):
    """WaitSnapshot answers once the snapshot is no longer pending (asynchronously)."""
    create_volume(daemon, "v", 16 * MiB)
    write(daemon, "v", [(0, os.urandom(MiB))])
    addr = f"unix:path={daemon.control_path}"
    p = subprocess.run(["busctl", f"--address={addr}", "--json=short", "call", "org.blocksnap1",
                        "/org/blocksnap1", "org.blocksnap1.Manager", "CreateSnapshot", "sa{ss}",
                        "v", "0"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    path, snap_id = json.loads(p.stdout)["data"]
    assert path.startswith("/org/blocksnap1/snapshot/")
    p = subprocess.run(["busctl", f"--address={addr}", "--json=short", "call", "org.blocksnap1",
                        "/org/blocksnap1", "org.blocksnap1.Manager", "WaitSnapshot", "s",
                        snap_id], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)["data"][0]
    assert rec["state"]["data"] == "completed" and rec["id"]["data"] == snap_id


def test_sigterm_with_a_dump_in_flight_stops_cleanly(daemon, tmp_path):
    """The dump runs on a worker; shutdown joins it before the engine goes (exit 0)."""
    create_volume(daemon, "v", 128 * MiB)
    write(daemon, "v", [(off, os.urandom(8 * MiB)) for off in range(0, 128 * MiB, 8 * MiB)])
    rec = snapshot(daemon, "v")
    p = subprocess.Popen([str(CTL), "--control", str(daemon.control_path), "snapshot", "dump",
                          rec["id"], str(tmp_path / "d.raw")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # Whether SIGTERM lands before, during or after the dump, the daemon exits 0 and the
    # client gets either success or a one-line error.
    assert daemon.stop() == 0
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 or err.startswith("blocksnapctl: "), err


def test_second_snapshot_while_pending_is_refused_clearly(daemon):
    """Refused, not queued (snapshot_manager.h): the message says which snapshot is pending.
    If the first copy already finished, the second simply succeeds."""
    create_volume(daemon, "v", 128 * MiB)
    write(daemon, "v", [(off, os.urandom(8 * MiB)) for off in range(0, 128 * MiB, 8 * MiB)])
    first = daemon.ctl("snapshot", "create", "v").stdout.strip()
    p = daemon.ctl("snapshot", "create", "v", check=False)
    if p.returncode != 0:
        assert p.returncode == 1
        assert "still pending" in p.stderr and first in p.stderr, p.stderr
    # Once the first has completed (WaitSnapshot), a new one is accepted.
    subprocess.run(["busctl", f"--address=unix:path={daemon.control_path}", "call",
                    "org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Manager",
                    "WaitSnapshot", "s", first], check=True, capture_output=True, timeout=300)
    assert snapshot(daemon, "v")["added_bytes"] == 0
