"""blocksnapd under blocksnapd.service's sandbox, emulated without PID 1 systemd: the unit's
SystemCallFilter= (expanded exactly as in the unit, via systemd-analyze syscall-filter) loaded
as a seccomp allow-list with EPERM for the rest (SystemCallErrorNumber=EPERM), native
architecture only, no capabilities at all (CapabilityBoundingSet=) and no_new_privs. The daemon
must start, serve NBD reads and writes through io_uring, and stop cleanly. As a control, the
same filter without io_uring must make it fail, which proves the filter is really applied."""
import os
import signal
import subprocess
import sys

import nbd

from conftest import CTL, DAEMON, REPO, NotifyListener, free_port
from test_systemd_units import UNITS, effective_syscalls

TIMEOUT = 60

# Runs in the child: loads the filter, then execs the daemon (argv[2:]).
LAUNCHER = r"""
import os, sys, errno, seccomp
allowed = open(sys.argv[1]).read().split()
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
for name in allowed:
    try:
        f.add_rule(seccomp.ALLOW, name)
    except (RuntimeError, ValueError, OSError):
        pass  # a name this kernel/libseccomp does not know, as systemd ignores it too
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_sandboxed(tmp, allowed):
    (tmp / "allowed").write_text("\n".join(sorted(allowed)))
    (tmp / "launcher.py").write_text(LAUNCHER)
    notify = NotifyListener(tmp / "notify.sock")
    port = free_port()
    log = open(tmp / "daemon.log", "ab")
    args = [str(DAEMON), "--data-dir", str(tmp / "data"), "--runtime-dir", str(tmp / "run"),
            "--control", str(tmp / "run" / "control.sock"), "--bus", "none",
            "--listen", f"127.0.0.1:{port}", "--unix", "none", "--io-threads", "2"]
    proc = subprocess.Popen(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs",
         "/usr/bin/python3", str(tmp / "launcher.py"), str(tmp / "allowed")] + args,
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        env=dict(os.environ, NOTIFY_SOCKET=notify.path))
    log.close()
    return proc, notify, port


def log_text(tmp):
    return (tmp / "daemon.log").read_text(errors="replace")


def test_daemon_serves_nbd_under_the_units_syscall_filter(tmp_path):
    allowed = effective_syscalls(UNITS / "blocksnapd.service")
    proc, notify, port = run_sandboxed(tmp_path, allowed)
    try:
        assert notify.wait_for("READY=1", proc), log_text(tmp_path)
        with open(f"/proc/{proc.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        assert status["CapEff"].strip() == "0000000000000000", status["CapEff"]
        assert status["CapBnd"].strip() == "0000000000000000", status["CapBnd"]
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"  # filter mode

        p = subprocess.run([str(CTL), "--control", str(tmp_path / "run" / "control.sock"),
                            "volume", "create", "vol", "--size", "16M"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr + log_text(tmp_path)

        h = nbd.NBD()
        h.connect_uri(f"nbd://127.0.0.1:{port}/vol")
        data = bytes(range(256)) * 256  # 64 KiB
        h.pwrite(data, 1 << 20)
        h.flush()
        assert h.pread(len(data), 1 << 20) == data
        h.trim(65536, 0)
        h.zero(65536, 2 << 20)
        assert h.pread(65536, 2 << 20) == bytes(65536)
        h.shutdown()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
        notify.close()
    assert code == 0, log_text(tmp_path)
    assert "Operation not permitted" not in log_text(tmp_path), log_text(tmp_path)


def test_the_filter_is_real_without_io_uring_the_daemon_fails(tmp_path):
    allowed = effective_syscalls(UNITS / "blocksnapd.service") - {
        "io_uring_setup", "io_uring_enter", "io_uring_register"}
    proc, notify, _ = run_sandboxed(tmp_path, allowed)
    try:
        ready = notify.wait_for("READY=1", proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
        notify.close()
    assert not ready and code != 0, log_text(tmp_path)
