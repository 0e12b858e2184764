"""The shipped D-Bus system bus policy (units/org.blocksnap1.conf) on a private dbus-daemon whose
configuration is the Debian system bus default policy plus an <include> of the shipped file,
with a real blocksnapd owning org.blocksnap1 on it. Callers: root, `nobody` (neither root nor in
group blocksnap) via setpriv, and `nobody` with the policy's group as a supplementary group."""
import grp
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO

POLICY = REPO / "units" / "org.blocksnap1.conf"
TIMEOUT = 60
MANAGER = ["org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Manager"]

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- The default policy of Debian's /usr/share/dbus-1/system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


class PrivateSystemBus:
    def __init__(self, policy_path):
        # World-traversable, so that `nobody` can reach the bus socket.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="blocksnap-dbus-", dir="/tmp"))
        self.dir.chmod(0o755)
        config = self.dir / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self.dir / "system_bus_socket",
                                            policy=policy_path))
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
             "--print-address"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.proc.stderr.read()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_on_bus(daemon_factory, bus):
    d = daemon_factory(env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    base_args = d.args

    def args():
        a = base_args()
        a[a.index("--bus") + 1] = "system"
        return a
    d.args = args
    return d.start()


def busctl(bus, *args, user=None, groups=None):
    cmd = ["busctl", f"--address={bus.address}"] + [str(a) for a in args]
    if user:
        prefix = ["setpriv", f"--reuid={user}", "--regid=nogroup"]
        prefix += [f"--groups={groups}"] if groups else ["--clear-groups"]
        cmd = prefix + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


def denied(p):
    """Refused by the bus (org.freedesktop.DBus.Error.AccessDenied, which busctl prints as
    "Access denied"); blocksnapd's own refusal would carry its own message."""
    return p.returncode != 0 and p.stderr.strip() == "Call failed: Access denied"


@pytest.fixture
def bus():
    b = PrivateSystemBus(POLICY)
    yield b
    b.close()


def test_root_may_mutate_and_read(daemon_factory, bus):
    start_on_bus(daemon_factory, bus)
    p = busctl(bus, "call", *MANAGER, "CreateVolume", "stta{ss}", "db", 1 << 24, 65536, 0)
    assert p.returncode == 0, p.stderr
    p = busctl(bus, "call", *MANAGER, "ListVolumes")
    assert p.returncode == 0 and '"db"' in p.stdout, p.stdout + p.stderr
    p = busctl(bus, "call", *MANAGER, "DeleteVolume", "sb", "db", "false")
    assert p.returncode == 0, p.stderr


def test_others_may_read_and_introspect_but_not_mutate(daemon_factory, bus):
    start_on_bus(daemon_factory, bus)
    assert busctl(bus, "call", *MANAGER, "CreateVolume", "stta{ss}", "db", 1 << 24, 65536,
                  0).returncode == 0
    path = busctl(bus, "call", *MANAGER, "GetVolumePath", "s", "db").stdout.split()[1].strip('"')

    reads = [
        ("call", *MANAGER, "ListVolumes"),
        ("call", *MANAGER, "GetVolume", "s", "db"),
        ("call", *MANAGER, "GetVolumePath", "s", "db"),
        ("call", *MANAGER, "ListSnapshots", "s", "db"),
        ("call", *MANAGER, "GetStatus"),
        ("call", *MANAGER, "ListPolicies"),
        ("introspect", "org.blocksnap1", "/org/blocksnap1"),
        ("get-property", "org.blocksnap1", path, "org.blocksnap1.Volume", "Size"),
        ("call", "org.blocksnap1", path, "org.freedesktop.DBus.Properties", "GetAll", "s",
         "org.blocksnap1.Volume"),
    ]
    for call in reads:
        p = busctl(bus, *call, user="nobody")
        assert p.returncode == 0, f"{call}: {p.stderr}"
    assert "16777216" in busctl(bus, "get-property", "org.blocksnap1", path,
                                "org.blocksnap1.Volume", "Size", user="nobody").stdout

    mutations = [
        ("call", *MANAGER, "CreateVolume", "stta{ss}", "evil", 1 << 24, 65536, 0),
        ("call", *MANAGER, "DeleteVolume", "sb", "db", "true"),
        ("call", *MANAGER, "TagVolume", "sa{ss}as", "db", 1, "k", "v", 0),
        ("call", *MANAGER, "CreateSnapshot", "sa{ss}", "db", 0),
        ("call", "org.blocksnap1", path, "org.freedesktop.DBus.Properties", "Set", "ssv",
         "org.blocksnap1.Volume", "Tags", "a{ss}", 0),
    ]
    for call in mutations:
        p = busctl(bus, *call, user="nobody")
        assert denied(p), f"{call} was not refused by the bus: {p.returncode} {p.stderr}"
    # Nothing changed.
    names = busctl(bus, "call", *MANAGER, "ListVolumes").stdout
    assert '"db"' in names and '"evil"' not in names


def test_only_root_may_own_the_name(bus):
    code = ("import dbus, sys\n"
            f"b = dbus.bus.BusConnection('{bus.address}')\n"
            "try:\n    b.request_name('org.blocksnap1')\n"
            "except dbus.exceptions.DBusException as e:\n    print(e.get_dbus_name())\n")
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "/usr/bin/python3", "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.stdout.strip() == "org.freedesktop.DBus.Error.AccessDenied", p.stdout + p.stderr


def test_group_members_may_mutate(daemon_factory, tmp_path):
    """The <policy group="blocksnap"> section. Where group blocksnap does not exist on the test
    host (the package creates it), the same policy is loaded with the group renamed to one that
    exists, so the host's group database stays untouched."""
    try:
        gid = grp.getgrnam("blocksnap").gr_gid
        policy = POLICY
    except KeyError:
        group = grp.getgrgid(100)  # Debian's "users"
        gid = group.gr_gid
        policy = tmp_path / "org.blocksnap1.conf"
        text = POLICY.read_text()
        assert text.count('group="blocksnap"') == 1
        policy.write_text(text.replace('group="blocksnap"', f'group="{group.gr_name}"'))
        policy.chmod(0o644)
        tmp_path.chmod(0o755)
    b = PrivateSystemBus(policy)
    try:
        start_on_bus(daemon_factory, b)
        p = busctl(b, "call", *MANAGER, "CreateVolume", "stta{ss}", "g", 1 << 24, 65536, 0,
                   user="nobody", groups=str(gid))
        # The bus lets it through; blocksnapd's own credential check decides from here (it
        # knows group blocksnap only by that name).
        assert not denied(p), p.stderr
    finally:
        b.close()
