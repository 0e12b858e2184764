"""The shipped systemd units: `systemd-analyze verify`, the hardening score, a syscall filter
that keeps io_uring, the socket unit's addresses, and the snapshot@ oneshot's command.

The units in units/ carry @sbindir@/@bindir@ placeholders (meson fills them at install); the
tests verify copies with ExecStart pointing at the binaries of the build under test, since
`verify` insists that ExecStart= names an existing executable.
"""
import re
import subprocess

import pytest

from conftest import CTL, DAEMON, REPO

UNITS = REPO / "units"
# The highest `systemd-analyze security` exposure we accept for blocksnapd.service (0 = best,
# 10 = worst). docs/SYSTEMD.md states the current figure; raise it only with a reason there.
MAX_EXPOSURE = 2.5


def render(unit_name, dest_dir, instance=None):
    """Copies units/<unit_name> into dest_dir with the build's binaries; a template is
    written as its instance (verify cannot load a bare template)."""
    text = (UNITS / unit_name).read_text()
    text = text.replace("@sbindir@/blocksnapd", str(DAEMON))
    text = text.replace("@bindir@/blocksnapctl", str(CTL))
    name = unit_name.replace("@.", f"@{instance}.") if instance else unit_name
    path = dest_dir / name
    path.write_text(text)
    return path


@pytest.fixture
def rendered(tmp_path):
    return [render("blocksnapd.service", tmp_path), render("blocksnapd.socket", tmp_path),
            render("blocksnap-snapshot@.service", tmp_path, instance="db"),
            render("blocksnap-snapshot@.timer", tmp_path, instance="db")]


def unit_settings(path, key):
    """Every value of `key=` in a unit file, in order."""
    values = []
    for line in path.read_text().splitlines():
        m = re.match(rf"^{key}=(.*)$", line.strip())
        if m:
            values.append(m.group(1))
    return values


def test_units_pass_systemd_analyze_verify(rendered, tmp_path):
    # --man=no: the man pages are checked by the package test, they are not installed here.
    p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + [str(u) for u in rendered],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stderr.strip() == "", p.stderr


def test_every_shipped_unit_is_verified():
    shipped = sorted(p.name for p in UNITS.iterdir()
                     if p.suffix in (".service", ".socket", ".timer"))
    assert shipped == ["blocksnap-snapshot@.service", "blocksnap-snapshot@.timer",
                       "blocksnapd.service", "blocksnapd.socket"]


def exposure(unit_path):
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                        str(unit_path)], capture_output=True, text=True, timeout=120,
                       cwd=unit_path.parent)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    return float(m.group(1)), p.stdout


def test_daemon_hardening_score(tmp_path):
    score, report = exposure(render("blocksnapd.service", tmp_path))
    assert score <= MAX_EXPOSURE, report
    documented = (REPO / "docs" / "SYSTEMD.md").read_text()
    assert f"{score:.1f}" in documented, f"docs/SYSTEMD.md does not state the score {score:.1f}"


def test_snapshot_oneshot_hardening_score(tmp_path):
    score, report = exposure(render("blocksnap-snapshot@.service", tmp_path, instance="db"))
    assert score <= MAX_EXPOSURE, report


def expand_syscall_set(names):
    """Expands @groups (recursively, via systemd-analyze syscall-filter) into syscall names."""
    out = set()
    for name in names:
        if not name.startswith("@"):
            out.add(name.split(":")[0])
            continue
        p = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                           capture_output=True, text=True, check=True, timeout=60)
        members = [ln.strip() for ln in p.stdout.splitlines()[1:]
                   if ln.strip() and not ln.strip().startswith("#")]
        out |= expand_syscall_set(members)
    return out


def effective_syscalls(unit_path):
    """The allow list a unit's SystemCallFilter= lines produce (allow lines first, then
    ~deny lines subtract), as systemd applies an allow-list filter."""
    allowed, denied = set(), set()
    for value in unit_settings(unit_path, "SystemCallFilter"):
        if value.startswith("~"):
            denied |= expand_syscall_set(value[1:].split())
        else:
            allowed |= expand_syscall_set(value.split())
    assert allowed, f"{unit_path.name} has no allow-list SystemCallFilter="
    return allowed - denied


def test_syscall_filter_keeps_io_uring():
    allowed = effective_syscalls(UNITS / "blocksnapd.service")
    for call in ("io_uring_setup", "io_uring_enter", "io_uring_register",
                 "fallocate", "fdatasync", "accept4", "epoll_wait", "timerfd_create"):
        assert call in allowed, f"SystemCallFilter of blocksnapd.service drops {call}"
    for call in ("mount", "reboot", "init_module", "setuid", "kexec_load"):
        assert call not in allowed, f"SystemCallFilter of blocksnapd.service allows {call}"


def test_service_contract():
    unit = UNITS / "blocksnapd.service"
    assert unit_settings(unit, "Type") == ["notify"]
    assert unit_settings(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert unit_settings(unit, "WatchdogSec")
    assert unit_settings(unit, "StateDirectory") == ["blocksnap"]
    assert unit_settings(unit, "RuntimeDirectory") == ["blocksnap"]
    assert unit_settings(unit, "ConfigurationDirectory") == ["blocksnap"]
    assert unit_settings(unit, "CapabilityBoundingSet") == [""]


def test_socket_unit_listens_on_nbd_port_and_unix_socket():
    unit = UNITS / "blocksnapd.socket"
    assert unit_settings(unit, "ListenStream") == ["127.0.0.1:10809", "/run/blocksnap/nbd.sock"]
    assert unit_settings(unit, "Service") == ["blocksnapd.service"]


def test_snapshot_unit_runs_blocksnapctl_snapshot_create_wait():
    unit = UNITS / "blocksnap-snapshot@.service"
    assert unit_settings(unit, "Type") == ["oneshot"]
    # %i, not %I: volume names may contain '-', which %I would turn into '/'.
    assert unit_settings(unit, "ExecStart") == ["@bindir@/blocksnapctl snapshot create %i --wait"]
    timer = UNITS / "blocksnap-snapshot@.timer"
    assert unit_settings(timer, "Persistent") == ["true"]
    assert unit_settings(timer, "OnCalendar") and unit_settings(timer, "RandomizedDelaySec")


def snapshot_unit_command(volume):
    """The snapshot@<volume> ExecStart as systemd would run it (%i expanded)."""
    exec_start = unit_settings(UNITS / "blocksnap-snapshot@.service", "ExecStart")[0]
    argv = exec_start.replace("@bindir@/blocksnapctl", str(CTL)).split()
    return [volume if a == "%i" else a for a in argv]


# The unit is written against the CLI contract (`snapshot create VOLUME --wait`), which
# blocksnapctl implements (daemon/ctl/snapshot_commands.cc).
def test_snapshot_unit_command_fails_for_unknown_volume(daemon):
    argv = snapshot_unit_command("no-such-volume")
    argv[1:1] = ["--control", str(daemon.control_path)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.startswith("blocksnapctl: ") and "no-such-volume" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_snapshot_unit_command_succeeds_for_a_volume(daemon):
    daemon.ctl("volume", "create", "db", "--size", "16M")
    argv = snapshot_unit_command("db")
    argv[1:1] = ["--control", str(daemon.control_path)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    snap_id = p.stdout.strip()
    assert daemon.ctl_json("snapshot", "show", snap_id)["state"] == "completed"


def test_dbus_activation_starts_the_service_through_its_alias():
    text = (UNITS / "org.blocksnap1.dbus-service").read_text()
    keys = dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln and ln[0] != "#")
    assert "[D-BUS Service]" in text
    assert keys["Name"] == "org.blocksnap1"
    alias = keys["SystemdService"]
    assert unit_settings(UNITS / "blocksnapd.service", "Alias") == [alias]
    assert unit_settings(UNITS / "blocksnapd.service", "Type") == ["notify"]
