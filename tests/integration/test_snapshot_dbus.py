"""The snapshot part of the D-Bus API (docs/DBUS.md, "Snapshots"): signals on the bus,
asynchronous WaitSnapshot/DumpSnapshot over busctl, and authority (other users may read but
not create, tag, lock, unlock, dump or delete)."""
import json
import os
import subprocess
import tempfile

import dbus

from harness import Daemon, stop_then_remove
from test_dbus import Monitor, bus_daemon, public_binaries, session_bus  # noqa: F401 fixtures
from test_snapshot_common import MiB, create_volume, snapshot, write

MANAGER = ["org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Manager"]


def busctl_json(address, method, signature="", *args):
    p = subprocess.run(["busctl", f"--address={address}", "--json=short", "call", *MANAGER,
                        method, *([signature] if signature else []), *[str(a) for a in args]],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["data"] if p.stdout.strip() else None


def expect_signal(mon, member, *strings):
    """Waits for the Manager signal `member` and checks its string arguments, in order."""
    mon.wait_for(lambda line: f"member={member}" in line)
    assert mon.next_lines(len(strings)) == [f'   string "{v}"' for v in strings]


def expect_lifecycle_signals(mon, snap_id, volume):
    expect_signal(mon, "SnapshotCreated", snap_id, volume, "pending")
    expect_signal(mon, "SnapshotCompleted", snap_id, volume, "completed")


def test_snapshot_signals_on_the_bus(bus_daemon):  # noqa: F811
    create_volume(bus_daemon, "v", 16 * MiB)
    write(bus_daemon, "v", [(0, os.urandom(MiB))])
    mon = Monitor(bus_daemon.bus, "type='signal',interface='org.blocksnap1.Manager'")
    try:
        snap_id = bus_daemon.ctl("snapshot", "create", "v", "--wait").stdout.strip()
        expect_lifecycle_signals(mon, snap_id, "v")
        bus_daemon.ctl("snapshot", "delete", snap_id)
        expect_signal(mon, "SnapshotRemoved", snap_id)
    finally:
        mon.close()


def test_snapshot_objects_come_and_go_through_the_object_manager(bus_daemon):  # noqa: F811
    """GetManagedObjects lists snapshot objects, so ObjectManager clients must hear of them
    coming and going too."""
    create_volume(bus_daemon, "v", 16 * MiB)
    mon = Monitor(bus_daemon.bus, "type='signal',interface='org.freedesktop.DBus.ObjectManager'")
    try:
        snap_id = bus_daemon.ctl("snapshot", "create", "v", "--wait").stdout.strip()
        path = "/org/blocksnap1/snapshot/" + snap_id.replace("-", "_")
        mon.wait_for(lambda line: "member=InterfacesAdded" in line)
        assert mon.next_lines(1) == [f'   object path "{path}"']
        mon.wait_for(lambda line: '"org.blocksnap1.Snapshot"' in line)
        bus_daemon.ctl("snapshot", "delete", snap_id)
        mon.wait_for(lambda line: "member=InterfacesRemoved" in line)
        assert mon.next_lines(2) == [f'   object path "{path}"', "   array ["]
        mon.wait_for(lambda line: '"org.blocksnap1.Snapshot"' in line)
    finally:
        mon.close()


def test_wait_dump_verify_status_over_the_bus(bus_daemon, tmp_path):  # noqa: F811
    create_volume(bus_daemon, "v", 16 * MiB)
    data = os.urandom(2 * MiB)
    write(bus_daemon, "v", [(MiB, data)])
    path, snap_id = busctl_json(bus_daemon.bus, "CreateSnapshot", "sa{ss}", "v", 1, "k", "x")
    rec = busctl_json(bus_daemon.bus, "WaitSnapshot", "s", snap_id)[0]
    assert rec["state"]["data"] == "completed" and rec["tags"]["data"] == {"k": "x"}
    assert rec["progress"]["type"] == "d" and rec["size"]["type"] == "t"
    # The fd argument ('h'), through the bus daemon.
    out = tmp_path / "bus.raw"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert dump_over_dbus(bus_daemon.bus, snap_id, fd) is None
    finally:
        os.close(fd)
    assert os.path.getsize(out) == 16 * MiB
    with open(out, "rb") as f:
        f.seek(MiB)
        assert f.read(len(data)) == data
    ok, bad = busctl_json(bus_daemon.bus, "VerifySnapshot", "s", snap_id)
    assert ok is True and bad == []
    st = busctl_json(bus_daemon.bus, "GetStatus")[0]
    assert st["stored_bytes"]["data"] == 2 * MiB and st["dedup_ratio"]["type"] == "d"
    # An fd opened read-only is refused (InvalidArgument); the daemon carries on.
    fd = os.open(out, os.O_RDONLY)
    try:
        err = dump_over_dbus(bus_daemon.bus, snap_id, fd)
    finally:
        os.close(fd)
    assert err is not None and err[0] == "org.blocksnap1.Error.InvalidArgument", err
    assert "not open for writing" in err[1], err
    assert bus_daemon.proc.poll() is None
    assert busctl_json(bus_daemon.bus, "GetSnapshot", "s", snap_id)[0]["id"]["data"] == snap_id
    with open(out, "rb") as f:
        f.seek(MiB)
        assert f.read(len(data)) == data  # untouched


def dump_over_dbus(address, snap_id, fd, peer=False):
    """DumpSnapshot(s snap_id, h fd) with dbus-python (busctl 252 cannot pass fds): through
    the bus at address, or with peer=True straight to the daemon's control socket. Returns
    None on success, else (error name, message)."""
    conn = (dbus.connection.Connection(address) if peer else dbus.bus.BusConnection(address))
    try:
        manager = dbus.Interface(conn.get_object("org.blocksnap1", "/org/blocksnap1"),
                                 "org.blocksnap1.Manager")
        manager.DumpSnapshot(snap_id, dbus.types.UnixFd(fd), timeout=120)
        return None
    except dbus.exceptions.DBusException as e:
        return e.get_dbus_name(), e.get_dbus_message()
    finally:
        conn.close()


def test_other_users_may_list_but_not_change_snapshots(public_binaries):  # noqa: F811
    base = tempfile.mkdtemp(prefix="blocksnap-snapperm-")
    os.chmod(base, 0o755)
    d = Daemon(base)
    try:
        d.start()
        create_volume(d, "mine", 4 * MiB)
        rec = snapshot(d, "mine")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     public_binaries["ctl"], "--control", str(d.control_path)]

        def run(*args):
            return subprocess.run([*as_nobody, *args], capture_output=True, text=True,
                                  timeout=120)
        p = run("--json", "snapshot", "list")
        assert p.returncode == 0 and rec["id"] in p.stdout
        assert run("snapshot", "show", rec["id"]).returncode == 0
        assert run("status").returncode == 0
        # A directory nobody may write to: blocksnapctl creates the dump file as nobody.
        out_dir = os.path.join(base, "out")
        os.mkdir(out_dir)
        os.chmod(out_dir, 0o777)
        nobody_file = os.path.join(out_dir, "nobody.raw")
        for args in (["snapshot", "create", "mine"], ["snapshot", "delete", rec["id"]],
                     ["snapshot", "tag", rec["id"], "a=b"], ["snapshot", "lock", rec["id"]],
                     ["snapshot", "unlock", rec["id"]],
                     ["snapshot", "dump", rec["id"], nobody_file]):
            p = run(*args)
            assert p.returncode == 1, (args, p.stderr)
            assert "permission denied" in p.stderr, p.stderr
        assert [(s["id"], s["locked"]) for s in d.ctl_json("snapshot", "list")] == [
            (rec["id"], False)]
        # Nor unlock what the owner locked (and so delete it).
        d.ctl("snapshot", "lock", rec["id"])
        for args in (["snapshot", "unlock", rec["id"]], ["snapshot", "delete", rec["id"]]):
            p = run(*args)
            assert p.returncode == 1 and "permission denied" in p.stderr, (args, p.stderr)
        assert d.ctl_json("snapshot", "show", rec["id"])["locked"] is True
        assert not os.path.exists(nobody_file)  # blocksnapctl removes it on the refusal
    finally:
        stop_then_remove(d, base)


def test_snapshot_objects_have_state_and_progress(daemon):
    create_volume(daemon, "v", 16 * MiB)
    write(daemon, "v", [(0, os.urandom(MiB))])
    address = f"unix:path={daemon.control_path}"
    path, snap_id = busctl_json(address, "CreateSnapshot", "sa{ss}", "v", 0)
    assert path == "/org/blocksnap1/snapshot/" + snap_id.replace("-", "_")
    busctl_json(address, "WaitSnapshot", "s", snap_id)

    def prop(name):
        p = subprocess.run(["busctl", f"--address={address}", "--json=short", "get-property",
                            "org.blocksnap1", path, "org.blocksnap1.Snapshot", name],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["data"]
    assert prop("State") == "completed"
    assert prop("Progress") == 1.0
    assert prop("Id") == snap_id and prop("Volume") == "v"
    assert prop("AddedBytes") == MiB
    tree = subprocess.run(["busctl", f"--address={address}", "tree", "org.blocksnap1"],
                          capture_output=True, text=True, timeout=60).stdout
    assert path in tree
    daemon.ctl("snapshot", "delete", snap_id)
    p = subprocess.run(["busctl", f"--address={address}", "get-property", "org.blocksnap1", path,
                        "org.blocksnap1.Snapshot", "State"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0


def test_scheduler_snapshots_are_signalled_too(daemon_factory, session_bus, tmp_path):  # noqa: F811
    """Snapshots the policy scheduler creates and retention deletes get the same signals as
    the ones a client asks for: SnapshotCreated, SnapshotCompleted, SnapshotRemoved."""
    from test_dbus import with_bus_mode
    from test_policy_common import START, policy_yaml, set_time, write_policies
    pdir = write_policies(tmp_path / "policies", {"p.yaml": policy_yaml("p", retain="{count: 1}")})
    d = daemon_factory(env={"DBUS_SESSION_BUS_ADDRESS": session_bus},
                       extra_args=["--policy-dir", str(pdir), "--test-clock", START])
    with_bus_mode(d, "user").start()
    d.ctl("volume", "create", "db", "--size", "1M", "--tag", "backup=nightly")
    mon = Monitor(session_bus, "type='signal',interface='org.blocksnap1.Manager'")
    try:
        [first] = set_time(d, "2026-01-05T03:00:00Z")
        expect_lifecycle_signals(mon, first["Snapshot"], "db")
        actions = set_time(d, "2026-01-06T03:00:00Z")  # count 1: the first one goes
        assert [a["Kind"] for a in actions] == ["create", "delete"]
        expect_signal(mon, "SnapshotRemoved", first["Snapshot"])
    finally:
        mon.close()
