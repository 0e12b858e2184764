"""Snapshot locks (blocksnapctl snapshot lock/unlock, LockSnapshot/UnlockSnapshot): a locked
snapshot cannot be deleted by anyone (manual delete fails naming the lock and frees nothing;
policy retention passes it over and does not count it) until it is unlocked; the lock is
durable and outlives the snapshot's volume."""
import json
import os
import subprocess

import dbus

from test_policy_common import create_volume as create_policy_volume
from test_policy_common import policy_daemon, policy_yaml, snapshots
from test_snapshot_common import MiB, create_volume, dump_sha, snapshot, write


def fails(daemon, *args):
    p = daemon.ctl(*args, check=False)
    assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
    return p.stderr


def locked_message(snap_id, volume):
    return (f"blocksnapctl: snapshot {snap_id} of volume {volume} is locked; unlock it before "
            "deleting it\n")


def test_locked_snapshot_survives_delete_restart_and_volume_delete(daemon, tmp_path):
    create_volume(daemon, "v", 8 * MiB)
    write(daemon, "v", [(0, os.urandom(2 * MiB)), (5 * MiB, os.urandom(MiB))])
    rec = snapshot(daemon, "v")
    snap_id = rec["id"]
    assert rec["locked"] is False
    sha = dump_sha(daemon, snap_id, tmp_path / "before.raw")
    other = snapshot(daemon, "v")

    locked = daemon.ctl_json("snapshot", "lock", snap_id)
    assert locked["id"] == snap_id and locked["locked"] is True
    assert daemon.ctl("snapshot", "lock", snap_id).stdout == ""  # again: a no-op
    assert daemon.ctl_json("snapshot", "show", snap_id)["locked"] is True
    assert "Locked:" in daemon.ctl("snapshot", "show", snap_id).stdout
    assert [line.split()[1] for line in daemon.ctl("snapshot", "show", snap_id).stdout
            .splitlines() if line.startswith("Locked:")] == ["yes"]
    table = daemon.ctl("snapshot", "list").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "VOLUME", "STATE", "LOCKED"]
    rows = {line.split()[0]: line.split()[3] for line in table[1:]}
    assert rows == {snap_id: "yes", other["id"]: "no"}

    # Delete: exit 1 naming the lock; nothing deleted, the bytes read as before.
    assert fails(daemon, "snapshot", "delete", snap_id) == locked_message(snap_id, "v")
    assert [s["id"] for s in daemon.ctl_json("snapshot", "list")] == [snap_id, other["id"]]
    assert dump_sha(daemon, snap_id, tmp_path / "locked.raw") == sha
    daemon.ctl("snapshot", "delete", other["id"])  # unlocked ones still go

    # The lock is stored: still there after a restart.
    daemon.restart()
    assert daemon.ctl_json("snapshot", "show", snap_id)["locked"] is True
    assert fails(daemon, "snapshot", "delete", snap_id) == locked_message(snap_id, "v")

    # Deleting the volume keeps its snapshots, the locked one with its lock and its bytes.
    daemon.ctl("volume", "delete", "v")
    kept = daemon.ctl_json("snapshot", "show", snap_id)
    assert kept["locked"] is True and kept["volume"] == "v"
    assert dump_sha(daemon, snap_id, tmp_path / "orphan.raw") == sha
    assert fails(daemon, "snapshot", "delete", snap_id) == locked_message(snap_id, "v")

    unlocked = daemon.ctl_json("snapshot", "unlock", snap_id)
    assert unlocked["locked"] is False
    daemon.ctl("snapshot", "unlock", snap_id)  # again: a no-op
    daemon.ctl("snapshot", "delete", snap_id)
    assert daemon.ctl_json("snapshot", "list") == []


def test_lock_errors(daemon):
    missing = "snap-00000000000000ff"
    assert missing in fails(daemon, "snapshot", "lock", missing)
    assert missing in fails(daemon, "snapshot", "unlock", missing)
    fails(daemon, "snapshot", "lock", "nonsense")
    assert daemon.ctl("snapshot", "lock", check=False).returncode == 2


def manager(address):
    conn = dbus.connection.Connection(address)  # peer-to-peer, the control socket
    return conn, dbus.Interface(conn.get_object("org.blocksnap1", "/org/blocksnap1"),
                                "org.blocksnap1.Manager")


def test_lock_over_dbus(daemon, tmp_path):
    create_volume(daemon, "v", 4 * MiB)
    write(daemon, "v", [(0, os.urandom(MiB))])
    snap_id = snapshot(daemon, "v")["id"]
    sha = dump_sha(daemon, snap_id, tmp_path / "before.raw")
    address = f"unix:path={daemon.control_path}"
    path = "/org/blocksnap1/snapshot/" + snap_id.replace("-", "_")

    def prop(name):
        p = subprocess.run(["busctl", f"--address={address}", "--json=short", "get-property",
                            "org.blocksnap1", path, "org.blocksnap1.Snapshot", name],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert prop("Locked") == {"type": "b", "data": False}
    conn, mgr = manager(address)
    try:
        rec = mgr.LockSnapshot(snap_id)
        assert rec["id"] == snap_id and rec["locked"] is not None and bool(rec["locked"])
        assert isinstance(rec["locked"], dbus.Boolean)
        assert prop("Locked") == {"type": "b", "data": True}
        assert bool(mgr.GetSnapshot(snap_id)["locked"])
        assert [bool(s["locked"]) for s in mgr.ListSnapshots("")] == [True]
        try:
            mgr.DeleteSnapshot(snap_id, timeout=120)
            raise AssertionError("DeleteSnapshot of a locked snapshot succeeded")
        except dbus.exceptions.DBusException as e:
            assert e.get_dbus_name() == "org.blocksnap1.Error.Locked"
            assert e.get_dbus_message() == (f"snapshot {snap_id} of volume v is locked; unlock "
                                            "it before deleting it")
        assert prop("State") == {"type": "s", "data": "completed"}
        assert dump_sha(daemon, snap_id, tmp_path / "locked.raw") == sha

        assert not bool(mgr.UnlockSnapshot(snap_id)["locked"])
        assert prop("Locked") == {"type": "b", "data": False}
        mgr.DeleteSnapshot(snap_id, timeout=120)
    finally:
        conn.close()
    assert daemon.ctl_json("snapshot", "list") == []


def test_policy_retention_keeps_and_does_not_count_a_locked_snapshot(daemon_factory, tmp_path):
    """count: 1 keeps the newest unlocked snapshot plus every locked one; a locked snapshot
    takes no place in the count, so the round after locking deletes nothing."""
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p", retain="{count: 1}")})
    create_policy_volume(d, "db", backup="nightly")

    def run():
        return [(a["kind"], a["snapshot"], a.get("error", ""))
                for a in d.ctl_json("policy", "run", "p", "--schedule", "nightly")]

    [(kind, first, err)] = run()
    assert (kind, err) == ("create", "")
    d.ctl("snapshot", "lock", first)
    [(kind, second, err)] = run()  # count 1: `second`, plus the locked `first`
    assert (kind, err) == ("create", "")
    assert [s["id"] for s in snapshots(d, "db")] == [first, second]
    assert run()[1:] == [("delete", second, "")]  # the third counts; `first` stays
    third = snapshots(d, "db")[-1]["id"]
    assert [s["id"] for s in snapshots(d, "db")] == [first, third]

    d.ctl("snapshot", "unlock", first)
    actions = run()
    assert sorted(a[1] for a in actions[1:]) == sorted([first, third])
    assert [a[0] for a in actions] == ["create", "delete", "delete"]
