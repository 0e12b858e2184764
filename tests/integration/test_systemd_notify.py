"""sd_notify from blocksnapd as systemd sees it: READY=1 once the sockets accept, a STATUS= line
that says what it serves, WATCHDOG=1 at half of WATCHDOG_USEC (only for WATCHDOG_PID = its own
pid), RELOADING=1/READY=1 around SIGHUP, STOPPING=1 on SIGTERM.

The test plays the service manager: it binds the NOTIFY_SOCKET datagram socket and blocks on
the datagrams (no sleeps)."""
import os
import signal
import socket
import subprocess
import time

from conftest import NotifyListener

TIMEOUT = 60


def datagrams(listener, proc, until, timeout=TIMEOUT):
    """Reads datagrams into listener.messages until until(messages) is true; False if the
    process exits or the timeout (a hang guard, not a synchronisation) passes first."""
    deadline = time.monotonic() + timeout
    while not until(listener.messages):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        listener.sock.settimeout(1.0)
        try:
            listener.messages.append(listener.sock.recv(65536).decode(errors="replace"))
        except socket.timeout:
            continue
    return True


def fields(message):
    return dict(line.split("=", 1) for line in message.splitlines() if "=" in line)


def ready_message(listener):
    return next(m for m in listener.messages if "READY=1" in m.splitlines())


def test_ready_after_sockets_accept_with_serving_status(daemon):
    # READY=1 has been received (the fixture waits for it): every socket accepts by now.
    for path in (daemon.control_path, daemon.unix_path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(path))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=TIMEOUT):
        pass
    status = fields(ready_message(daemon.notify))["STATUS"]
    assert status == (f"Serving 0 volume(s) over NBD on 127.0.0.1:{daemon.port}, "
                      f"{daemon.unix_path}")


def start_with_watchdog_pid(daemon, usec, pid_expr):
    """Starts the daemon through sh so WATCHDOG_PID can name the pid blocksnapd will have:
    `exec` keeps sh's pid ($$)."""
    daemon.start_count += 1
    daemon.notify = NotifyListener(daemon.tmp / f"notify-{daemon.start_count}.sock")
    env = dict(daemon.env, NOTIFY_SOCKET=daemon.notify.path, WATCHDOG_USEC=str(usec))
    env.pop("JOURNAL_STREAM", None)
    daemon.log = open(daemon.log_path, "ab")
    daemon.proc = subprocess.Popen(
        ["/bin/sh", "-c", f'WATCHDOG_PID={pid_expr} exec "$@"', "sh"] + daemon.args(),
        stdout=daemon.log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    assert daemon.notify.wait_for("READY=1", daemon.proc), daemon.log_text()


def test_watchdog_pings_repeatedly(daemon_factory):
    d = daemon_factory()
    start_with_watchdog_pid(d, 200000, "$$")
    pings = lambda msgs: sum("WATCHDOG=1" in m.splitlines() for m in msgs)  # noqa: E731
    assert datagrams(d.notify, d.proc, lambda msgs: pings(msgs) >= 5), d.log_text()
    assert "watchdog enabled: WATCHDOG=1 every 100 ms" in d.log_text()
    # Pings come after READY=1: the daemon does not claim liveness before it serves.
    kinds = [m for m in d.notify.messages if "READY=1" in m or "WATCHDOG=1" in m]
    assert "READY=1" in kinds[0]
    assert d.stop() == 0


def test_watchdog_is_off_when_watchdog_pid_names_another_process(daemon_factory):
    d = daemon_factory()
    start_with_watchdog_pid(d, 200000, "1")
    # The watchdog is set up before READY=1 is sent; by now it would have said so.
    assert "watchdog enabled" not in d.log_text()
    assert d.stop() == 0


def test_reload_sends_reloading_then_ready_with_the_same_status(daemon):
    first_status = fields(ready_message(daemon.notify))["STATUS"]
    daemon.notify.messages.clear()
    os.kill(daemon.pid, signal.SIGHUP)
    assert datagrams(daemon.notify, daemon.proc,
                     lambda msgs: any("READY=1" in m.splitlines() for m in msgs))
    reloading = next(m for m in daemon.notify.messages if "RELOADING=1" in m.splitlines())
    assert int(fields(reloading)["MONOTONIC_USEC"]) > 0
    assert daemon.notify.messages.index(reloading) < daemon.notify.messages.index(
        ready_message(daemon.notify))
    assert fields(ready_message(daemon.notify))["STATUS"] == first_status


def test_stopping_on_sigterm(daemon):
    daemon.proc.send_signal(signal.SIGTERM)
    assert datagrams(daemon.notify, daemon.proc,
                     lambda msgs: any("STOPPING=1" in m.splitlines() for m in msgs)) \
        or any("STOPPING=1" in m.splitlines() for m in _drain(daemon.notify))
    assert daemon.proc.wait(timeout=TIMEOUT) == 0
    daemon._close()


def _drain(listener):
    """Datagrams still queued after the sender exited."""
    listener.sock.setblocking(False)
    try:
        while True:
            listener.messages.append(listener.sock.recv(65536).decode(errors="replace"))
    except BlockingIOError:
        pass
    return listener.messages
