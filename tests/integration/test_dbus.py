"""The D-Bus control plane (docs/DBUS.md) with standard D-Bus tools.

A private dbus-daemon per test plays the user bus; blocksnapd runs with `--bus user` on it.
busctl introspects and calls; dbus-send shows the error names (on the bus and, with --peer,
on the private control socket); dbus-monitor sees the signals. Nothing here sleeps: the
daemon owns its name before it reports READY=1, and signals are awaited line by line with a
bounded deadline.
"""
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from xml.etree import ElementTree

import pytest

from conftest import CTL, DAEMON, REPO, Daemon
from harness import stop_then_remove

BUS_NAME = "org.blocksnap1"
MANAGER = "/org/blocksnap1"
MANAGER_IFACE = "org.blocksnap1.Manager"
VOLUME_IFACE = "org.blocksnap1.Volume"
DEADLINE = 30  # seconds to wait for an event before failing (never a sleep)


def run(cmd, check=True, env=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})))
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stderr}")
    return p


@pytest.fixture
def session_bus():
    """A private session dbus-daemon; yields its address; killed by its pid at the end."""
    p = subprocess.run(["dbus-daemon", "--session", "--print-address", "--fork",
                        "--print-pid"], capture_output=True, text=True, timeout=60, check=True)
    lines = p.stdout.split()
    address, pid = lines[0], int(lines[1])
    try:
        yield address
    finally:
        os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def public_binaries():
    """Copies of blocksnapd and blocksnapctl that any user may run: the build tree may sit
    under a directory other users cannot enter (e.g. /root). Yields {"daemon", "ctl"}."""
    d = tempfile.mkdtemp(prefix="blocksnap-bin-")
    os.chmod(d, 0o755)
    try:
        paths = {"daemon": shutil.copy2(DAEMON, d), "ctl": shutil.copy2(CTL, d)}
        yield paths
    finally:
        shutil.rmtree(d, ignore_errors=True)


def with_bus_mode(daemon, mode):
    """Makes daemon start with `--bus mode` instead of the fixture's `--bus none`."""
    base_args = daemon.args

    def args():
        a = base_args()
        a[a.index("--bus") + 1] = mode
        return a

    daemon.args = args
    return daemon


@pytest.fixture
def bus_daemon(daemon_factory, session_bus):
    """blocksnapd serving on the private bus (and on its control socket)."""
    d = daemon_factory(env={"DBUS_SESSION_BUS_ADDRESS": session_bus})
    with_bus_mode(d, "user").start()
    d.bus = session_bus
    return d


def busctl(d, *args, check=True):
    return run(["busctl", f"--address={d.bus}", *args], check=check)


def dbus_send(address_flag, method, *args, check=False):
    return run(["dbus-send", address_flag, "--print-reply", f"--dest={BUS_NAME}", MANAGER,
                f"{MANAGER_IFACE}.{method}", *args], check=check)


def volume_path(vol_id):
    return "/org/blocksnap1/volume/" + vol_id.replace("-", "_")


# -- the bus --------------------------------------------------------------------------------

def test_takes_its_name_and_introspects(bus_daemon):
    names = busctl(bus_daemon, "list", "--acquired").stdout
    assert BUS_NAME in names
    out = busctl(bus_daemon, "introspect", BUS_NAME, MANAGER).stdout
    assert MANAGER_IFACE in out
    for member in ["CreateVolume", "ListVolumes", "GetVolume", "DeleteVolume", "TagVolume",
                   "VolumeCreated", "VolumeRemoved"]:
        assert f".{member} " in out, member
    assert "stta{ss}" in out  # CreateVolume's signature


def test_create_volume_over_the_bus(bus_daemon):
    out = busctl(bus_daemon, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "CreateVolume",
                 "stta{ss}", "demo", str(64 << 20), "0", "1", "env", "prod").stdout
    m = re.fullmatch(r'os "(/org/blocksnap1/volume/vol_[0-9a-f]{16})" "(vol-[0-9a-f]{16})"\n',
                     out)
    assert m, out
    path, vol_id = m.groups()
    assert path == volume_path(vol_id)
    # The private socket sees the same daemon state.
    vols = bus_daemon.ctl_json("volume", "list")
    assert [(v["name"], v["id"], v["size"], v["tags"]) for v in vols] == [
        ("demo", vol_id, 64 << 20, {"env": "prod"})]
    assert "demo" in bus_daemon.ctl("volume", "list").stdout
    img = bus_daemon.data_dir / "volumes" / f"{vol_id}.img"
    assert img.stat().st_size == 64 << 20 and img.stat().st_blocks == 0


def test_volume_objects_follow_the_volumes(bus_daemon):
    vol_id = bus_daemon.ctl("volume", "create", "demo", "--size", "4M", "--chunk-size", "4K",
                            "--tag", "a=1").stdout.strip()
    path = volume_path(vol_id)
    assert path in busctl(bus_daemon, "tree", BUS_NAME).stdout

    def prop(name):
        return busctl(bus_daemon, "get-property", BUS_NAME, path, VOLUME_IFACE,
                      name).stdout.strip()

    assert prop("Id") == f's "{vol_id}"'
    assert prop("Name") == 's "demo"'
    assert prop("Size") == f"t {4 << 20}"
    assert prop("ChunkSize") == "t 4096"
    assert prop("Tags") == 'a{ss} 1 "a" "1"'
    assert prop("State") == 's "available"'
    assert prop("Uri") == f's "{bus_daemon.uri("demo")}"'
    assert prop("Clients") == "a(sss) 0"
    out = busctl(bus_daemon, "introspect", BUS_NAME, path).stdout
    assert VOLUME_IFACE in out
    # Object paths carry ids only: the name, though the lookup behind them takes names too,
    # is no object.
    p = busctl(bus_daemon, "get-property", BUS_NAME, "/org/blocksnap1/volume/demo",
               VOLUME_IFACE, "Name", check=False)
    assert p.returncode != 0

    bus_daemon.ctl("volume", "tag", "demo", "b=2")
    assert prop("Tags") == 'a{ss} 2 "a" "1" "b" "2"'

    bus_daemon.ctl("volume", "delete", "demo")
    assert path not in busctl(bus_daemon, "tree", BUS_NAME).stdout
    p = busctl(bus_daemon, "get-property", BUS_NAME, path, VOLUME_IFACE, "Name", check=False)
    assert p.returncode != 0


def test_list_and_get_return_volume_dictionaries(bus_daemon):
    vol_id = bus_daemon.ctl("volume", "create", "demo", "--size", "4M").stdout.strip()
    out = busctl(bus_daemon, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "ListVolumes").stdout
    assert out.startswith("aa{sv} 1 ")
    for key in ['"Id" s "' + vol_id + '"', '"Name" s "demo"', f'"Size" t {4 << 20}',
                '"ChunkSize" t 65536', '"State" s "available"', '"Tags" a{ss} 0']:
        assert key in out, (key, out)
    out = busctl(bus_daemon, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "GetVolume", "s",
                 "demo").stdout
    assert out.startswith("a{sv} ") and f'"Path" o "{volume_path(vol_id)}"' in out
    out = busctl(bus_daemon, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "GetVolumePath", "s",
                 vol_id).stdout
    assert out.strip() == f'o "{volume_path(vol_id)}"'


def test_object_manager_lists_volumes_with_properties(bus_daemon):
    a = bus_daemon.ctl("volume", "create", "a", "--size", "4M", "--tag", "k=v").stdout.strip()
    b = bus_daemon.ctl("volume", "create", "b", "--size", "8M").stdout.strip()
    out = busctl(bus_daemon, "call", BUS_NAME, MANAGER, "org.freedesktop.DBus.ObjectManager",
                 "GetManagedObjects").stdout
    assert out.startswith("a{oa{sa{sv}}} 2 ")
    for vol_id, name in ((a, "a"), (b, "b")):
        assert f'"{volume_path(vol_id)}"' in out
        assert f'"Name" s "{name}"' in out
    assert '"Tags" a{ss} 1 "k" "v"' in out


BUS_ERRORS = [
    ("GetVolume", ["string:nope"], "NotFound", "volume 'nope' not found"),
    ("DeleteVolume", ["string:nope", "boolean:false"], "NotFound", "volume 'nope' not found"),
    ("TagVolume", ["string:nope", "dict:string:string:a,b", "array:string:"], "NotFound",
     "volume 'nope' not found"),
    ("CreateVolume", ["string:existing", "uint64:4096", "uint64:0", "dict:string:string:"],
     "AlreadyExists", "volume 'existing' already exists"),
    # The daemon checks what blocksnapctl would have refused before sending.
    ("CreateVolume", ["string:a/b", "uint64:4096", "uint64:0", "dict:string:string:"],
     "InvalidArgument", "invalid volume name 'a/b'"),
    ("CreateVolume", ["string:", "uint64:4096", "uint64:0", "dict:string:string:"],
     "InvalidArgument", "invalid volume name ''"),
    ("CreateVolume", ["string:x", "uint64:1000", "uint64:0", "dict:string:string:"],
     "InvalidArgument", "invalid size 1000"),
    ("CreateVolume", ["string:x", "uint64:0", "uint64:0", "dict:string:string:"],
     "InvalidArgument", "invalid size 0"),
    ("CreateVolume", ["string:x", "uint64:4194304", "uint64:3000", "dict:string:string:"],
     "InvalidArgument", "invalid chunk size 3000"),
    ("CreateVolume", ["string:x", "uint64:4194304", "uint64:8388608", "dict:string:string:"],
     "InvalidArgument", "invalid chunk size 8388608"),
    ("CreateVolume", ["string:x", "uint64:4194304", "uint64:0",
                      "dict:string:string:blocksnap:x,1"], "InvalidArgument", "blocksnap:"),
    ("TagVolume", ["string:existing", "dict:string:string:a,1", "array:string:a"],
     "InvalidArgument", "both set and unset"),
]


@pytest.mark.parametrize("method,args,error,message", BUS_ERRORS,
                         ids=[f"{e[0]}-{e[2]}-{i}" for i, e in enumerate(BUS_ERRORS)])
def test_errors_have_names_and_messages_and_change_nothing(bus_daemon, method, args, error,
                                                           message):
    bus_daemon.ctl("volume", "create", "existing", "--size", "4M")
    before = bus_daemon.ctl_json("volume", "list")
    expected = f"Error org.blocksnap1.Error.{error}: "
    # The same error on the bus and on the private peer-to-peer socket.
    for flag in (f"--bus={bus_daemon.bus}", f"--peer=unix:path={bus_daemon.control_path}"):
        p = dbus_send(flag, method, *args)
        assert p.returncode != 0
        assert expected in p.stderr and message in p.stderr, (flag, p.stderr)
        assert bus_daemon.ctl_json("volume", "list") == before


def test_private_socket_speaks_plain_dbus(daemon):
    peer = f"--peer=unix:path={daemon.control_path}"
    p = dbus_send(peer, "CreateVolume", "string:p2p", "uint64:1048576", "uint64:0",
                  "dict:string:string:via,peer", check=True)
    assert 'object path "/org/blocksnap1/volume/vol_' in p.stdout
    p = dbus_send(peer, "ListVolumes", check=True)
    assert 'string "p2p"' in p.stdout
    assert daemon.ctl_json("volume", "show", "p2p")["tags"] == {"via": "peer"}


# -- the documented interface ----------------------------------------------------------------

DOC_XML = REPO / "docs" / "org.blocksnap1.xml"
XML_HEADER = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
"https://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<!-- blocksnapd's D-Bus API, described in docs/DBUS.md. Generated from the running daemon
     by busctl introspect (XML interface output); tests/integration/test_dbus.py checks that
     it matches, and rewrites it when run with BLOCKSNAP_UPDATE_DOCS=1. -->
<node>
"""


def interface_xml(text, name):
    """The <interface name=NAME> element of an introspection document, as text."""
    m = re.search(r'^( *)<interface name="' + re.escape(name) + r'">.*?^\1</interface>\n', text,
                  re.M | re.S)
    assert m, f"{name} not in:\n{text}"
    return m.group(0)


def test_introspection_matches_docs(bus_daemon):
    vol_id = bus_daemon.ctl("volume", "create", "demo", "--size", "4M").stdout.strip()
    manager = busctl(bus_daemon, "introspect", "--xml-interface", BUS_NAME, MANAGER).stdout
    volume = busctl(bus_daemon, "introspect", "--xml-interface", BUS_NAME,
                    volume_path(vol_id)).stdout
    live = (XML_HEADER
            + " <!-- object /org/blocksnap1 -->\n" + interface_xml(manager, MANAGER_IFACE)
            + " <!-- objects /org/blocksnap1/volume/<id>, one per volume -->\n"
            + interface_xml(volume, VOLUME_IFACE) + "</node>\n")
    ElementTree.fromstring(live)  # well-formed
    if os.environ.get("BLOCKSNAP_UPDATE_DOCS"):
        DOC_XML.write_text(live)
    assert DOC_XML.read_text() == live, (
        "docs/org.blocksnap1.xml is out of date: rerun this test with BLOCKSNAP_UPDATE_DOCS=1")


def test_busctl_works_on_the_private_socket(daemon):
    address = f"--address=unix:path={daemon.control_path}"
    out = run(["busctl", address, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "CreateVolume",
               "stta{ss}", "p2p", str(4 << 20), "0", "0"]).stdout
    vol_id = re.search(r'"(vol-[0-9a-f]{16})"', out).group(1)
    assert MANAGER_IFACE in run(["busctl", address, "introspect", BUS_NAME, MANAGER]).stdout
    assert volume_path(vol_id) in run(["busctl", address, "tree", BUS_NAME]).stdout
    out = run(["busctl", address, "get-property", BUS_NAME, volume_path(vol_id), VOLUME_IFACE,
               "Name"]).stdout
    assert out.strip() == 's "p2p"'
    p = run(["busctl", address, "call", BUS_NAME, MANAGER, MANAGER_IFACE, "GetVolume", "s",
             "nope"], check=False)
    assert p.returncode != 0 and "volume 'nope' not found" in p.stderr


# -- signals --------------------------------------------------------------------------------

class Monitor:
    """dbus-monitor on the bus, read line by line from the raw pipe with a bounded deadline
    (select() on the fd, our own line buffer: a Python file object would hide buffered lines
    from select)."""

    def __init__(self, address, rule):
        # stdbuf -oL: dbus-monitor writes through stdio, which a pipe makes block-buffered.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "dbus-monitor", "--address", address,
                                      rule], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.fd = self.proc.stdout.fileno()
        self.buffer = b""
        self.lines = []
        # BecomeMonitor drops the monitor's own name: NameLost means monitoring is active.
        self.wait_for(lambda line: "member=NameLost" in line)

    def _next_line(self, deadline):
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        line = line.decode(errors="replace")
        self.lines.append(line)
        return line

    def wait_for(self, predicate):
        deadline = time.monotonic() + DEADLINE
        while (line := self._next_line(deadline)) is not None:
            if predicate(line):
                return line
        raise AssertionError("dbus-monitor did not see it; got:\n" + "\n".join(self.lines))

    def next_lines(self, n):
        return [self.wait_for(lambda _: True) for _ in range(n)]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def test_signals_on_create_tag_delete(bus_daemon):
    mon = Monitor(bus_daemon.bus, "type='signal',path_namespace='/org/blocksnap1'")
    try:
        vol_id = bus_daemon.ctl("volume", "create", "demo", "--size", "4M").stdout.strip()
        mon.wait_for(lambda line: "member=VolumeCreated" in line)
        assert mon.next_lines(3) == [f'   string "{vol_id}"', '   string "demo"',
                                     f'   object path "{volume_path(vol_id)}"']
        mon.wait_for(lambda line: "member=InterfacesAdded" in line)
        assert mon.next_lines(1) == [f'   object path "{volume_path(vol_id)}"']

        bus_daemon.ctl("volume", "tag", "demo", "k=v")
        line = mon.wait_for(lambda line: "member=PropertiesChanged" in line)
        assert f"path={volume_path(vol_id)};" in line
        mon.wait_for(lambda line: 'string "Tags"' in line)

        bus_daemon.ctl("volume", "delete", "demo")
        mon.wait_for(lambda line: "member=VolumeRemoved" in line)
        assert mon.next_lines(1) == [f'   string "{vol_id}"']
        mon.wait_for(lambda line: "member=InterfacesRemoved" in line)
        assert mon.next_lines(1) == [f'   object path "{volume_path(vol_id)}"']
    finally:
        mon.close()


# -- choosing a bus -------------------------------------------------------------------------

def test_explicit_bus_that_cannot_be_reached_is_an_error(daemon_factory, tmp_path):
    d = daemon_factory(env={"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"})
    with_bus_mode(d, "user")
    p = run([*d.args()], check=False, env=d.env)
    assert p.returncode != 0
    assert "user bus" in p.stderr
    assert not d.control_path.exists(), "a failed start must remove its control socket"


def test_auto_without_a_bus_serves_the_control_socket(daemon_factory, tmp_path):
    nowhere = f"unix:path={tmp_path}/no-bus"
    d = daemon_factory(env={"DBUS_SESSION_BUS_ADDRESS": nowhere,
                            "DBUS_SYSTEM_BUS_ADDRESS": nowhere})
    with_bus_mode(d, "auto").start()
    d.ctl("volume", "create", "demo", "--size", "4M")
    assert "not on a bus" in d.log_text()


def test_name_already_owned_is_an_error(bus_daemon, daemon_factory):
    second = daemon_factory("second", env={"DBUS_SESSION_BUS_ADDRESS": bus_daemon.bus})
    with_bus_mode(second, "user")
    p = run(second.args(), check=False, env=second.env)
    assert p.returncode != 0
    assert "already owned" in p.stderr
    # The first keeps serving.
    assert BUS_NAME in busctl(bus_daemon, "list", "--acquired").stdout


def test_second_daemon_on_the_same_control_socket_is_refused(daemon, daemon_factory):
    other = daemon_factory("other")
    other.control_path = daemon.control_path
    base = other.args

    def args():
        a = base()
        a[a.index("--control") + 1] = str(daemon.control_path)
        return a

    p = run(args(), check=False, env=other.env)
    assert p.returncode != 0
    assert "already listening" in p.stderr
    # The first daemon's socket is still there and answering.
    daemon.ctl("volume", "list")


def test_socket_left_by_a_killed_daemon_is_replaced(daemon):
    daemon.ctl("volume", "create", "demo", "--size", "4M")
    daemon.kill9()
    assert daemon.control_path.is_socket(), "kill -9 leaves the socket file behind"
    p = daemon.ctl("volume", "list", check=False)
    assert p.returncode == 1 and "Connection refused" in p.stderr
    daemon.start()
    assert [v["name"] for v in daemon.ctl_json("volume", "list")] == ["demo"]
    assert daemon.control_path.stat().st_mode & 0o777 == 0o666


# -- authority ------------------------------------------------------------------------------

def test_other_users_may_read_but_not_change(public_binaries):
    # The control socket must be reachable by "nobody": pytest's tmp dirs are 0700.
    base = tempfile.mkdtemp(prefix="blocksnap-perm-")
    os.chmod(base, 0o755)
    d = Daemon(base)
    try:
        d.start()
        d.ctl("volume", "create", "mine", "--size", "4M")
        before = d.ctl_json("volume", "list")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     public_binaries["ctl"],
                     "--control", d.control_path]
        p = run([*as_nobody, "--json", "volume", "list"])
        assert '"mine"' in p.stdout
        for args in (["volume", "create", "theirs", "--size", "4M"],
                     ["volume", "delete", "mine"], ["volume", "tag", "mine", "a=b"]):
            p = run([*as_nobody, *args], check=False)
            assert p.returncode == 1
            assert "permission denied" in p.stderr, p.stderr
        assert d.ctl_json("volume", "list") == before
    finally:
        stop_then_remove(d, base)


def test_the_daemons_own_user_may_change_things(public_binaries):
    """blocksnapd run by an unprivileged user (as a user service would be): that user and root
    may mutate, a third user may only read."""
    base = tempfile.mkdtemp(prefix="blocksnap-user-")
    os.chmod(base, 0o777)
    d = Daemon(base)
    base_args = d.args
    d.args = lambda: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      public_binaries["daemon"], *base_args()[1:]]
    old_umask = os.umask(0)  # the notify socket must be writable by the daemon's user
    try:
        d.start()
    finally:
        os.umask(old_umask)
    try:
        def ctl_as(uid, *args):
            return run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                        public_binaries["ctl"],
                        "--control", d.control_path, *args], check=False)

        p = ctl_as(65534, "volume", "create", "theirs", "--size", "4M")
        assert p.returncode == 0, p.stderr
        d.ctl("volume", "tag", "theirs", "by=root")
        before = d.ctl_json("volume", "list")
        p = ctl_as(65533, "volume", "delete", "theirs")
        assert p.returncode == 1 and "permission denied (user 65533" in p.stderr, p.stderr
        assert ctl_as(65533, "--json", "volume", "list").returncode == 0
        assert d.ctl_json("volume", "list") == before
        assert ctl_as(65534, "volume", "delete", "theirs").returncode == 0
        assert d.ctl_json("volume", "list") == []
    finally:
        stop_then_remove(d, base)
