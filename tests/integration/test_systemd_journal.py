"""Structured journal entries: with JOURNAL_STREAM naming its stderr (as systemd sets it),
blocksnapd logs native-protocol entries with PRIORITY= mapped from the spdlog level, MESSAGE=,
SYSLOG_IDENTIFIER= and scoped fields such as VOLUME=.

There is no journald here (systemd is not PID 1), so the test is the journal: an AF_UNIX
datagram socket that parses the native protocol. Two routes reach it: BLOCKSNAP_JOURNAL_SOCKET
(the daemon's test hook), and the production route, sd_journal_sendv() to
/run/systemd/journal/socket, with that path bind-mounted onto the test socket inside a private
mount namespace (unshare -m), so the system is untouched."""
import os
import signal
import socket
import struct
import subprocess
import threading

from conftest import DAEMON, NotifyListener, free_port

TIMEOUT = 60


def parse_native(data):
    """One native-protocol datagram -> list of (name, value)."""
    out, i = [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = nl + 1
        else:  # binary-safe form: NAME\n<le64 size><value>\n
            name = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            value = data[nl + 9:nl + 9 + size]
            assert data[nl + 9 + size:nl + 10 + size] == b"\n"
            i = nl + 10 + size
        out.append((name.decode(), value.decode(errors="replace")))
    return out


class FakeJournal:
    """A bound datagram socket drained by a thread (a full queue would block the daemon)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.entries = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:  # shut down
                return
            with self.cond:
                self.entries.append(dict(parse_native(data)))
                self.cond.notify_all()

    def find(self, text):
        with self.cond:
            return [e for e in self.entries if text in e.get("MESSAGE", "")]

    def wait_for(self, text, timeout=TIMEOUT):
        """Blocks until an entry whose MESSAGE contains text has arrived; returns them all."""
        with self.cond:
            self.cond.wait_for(lambda: self.find(text), timeout=timeout)
        return self.find(text)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=TIMEOUT)


def run_daemon(tmp, journal_stream=True, env_extra=None, wrapper=()):
    """Starts blocksnapd with stderr on a file and JOURNAL_STREAM naming that file (or, with
    journal_stream=False, naming something else). Returns (proc, notify, log path)."""
    cfg = tmp / "cfg.yaml"
    cfg.write_text("volumes:\n  - name: jdemo\n    size: 16M\n")
    log_path = tmp / "stderr.log"
    log = open(log_path, "ab")
    st = os.fstat(log.fileno())
    notify = NotifyListener(tmp / "notify.sock")
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, **(env_extra or {}))
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}" if journal_stream \
        else f"{st.st_dev}:{st.st_ino + 1}"
    args = [str(DAEMON), "--config", str(cfg), "--data-dir", str(tmp / "data"),
            "--runtime-dir", str(tmp / "run"), "--control", str(tmp / "run" / "control.sock"),
            "--bus", "none", "--log-level", "debug", "--listen", f"127.0.0.1:{free_port()}",
            "--unix", "none"]
    proc = subprocess.Popen(list(wrapper) + args, stdout=log, stderr=log, env=env,
                            stdin=subprocess.DEVNULL)
    log.close()
    assert notify.wait_for("READY=1", proc), log_path.read_text()
    return proc, notify, log_path, cfg


def stop(proc, notify):
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=TIMEOUT)
    notify.close()
    return code


def check_entries(journal, proc, notify, cfg, log_path):
    created = journal.wait_for("created volume jdemo")
    assert len(created) == 1, log_path.read_text()
    e = created[0]
    assert e["PRIORITY"] == "6" and e["SYSLOG_IDENTIFIER"] == "blocksnapd", e
    assert e["VOLUME"] == "jdemo", e
    assert e["TID"].isdigit()
    # Fields are scoped: the next entries do not carry VOLUME=.
    ready = journal.wait_for("blocksnapd ready")
    assert len(ready) == 1 and "VOLUME" not in ready[0] and ready[0]["PRIORITY"] == "6"

    # An error: a broken config on reload.
    cfg.write_text("volumes: [\n")
    os.kill(proc.pid, signal.SIGHUP)
    failed = journal.wait_for("reload failed")
    assert len(failed) == 1 and failed[0]["PRIORITY"] == "3", failed
    assert str(cfg) in failed[0]["MESSAGE"]


def test_journal_entries_via_the_test_socket(tmp_path):
    journal = FakeJournal(tmp_path / "journal.sock")
    proc, notify, log_path, cfg = run_daemon(
        tmp_path, env_extra={"BLOCKSNAP_JOURNAL_SOCKET": journal.path})
    try:
        check_entries(journal, proc, notify, cfg, log_path)
    finally:
        code = stop(proc, notify)
    assert code == 0
    assert journal.wait_for("blocksnapd stopped")
    journal.close()
    # Everything went to the journal, nothing to stderr.
    assert log_path.read_text() == ""


def test_journal_entries_via_sd_journal_sendv(tmp_path):
    """The production route: libsystemd's sd_journal_sendv to /run/systemd/journal/socket,
    which a private mount namespace points at the test socket."""
    journal = FakeJournal(tmp_path / "journal.sock")
    wrapper = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
               "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && "
               ": > /run/systemd/journal/socket && "
               f"mount --bind {journal.path} /run/systemd/journal/socket && exec \"$@\"", "sh"]
    proc, notify, log_path, cfg = run_daemon(tmp_path, wrapper=wrapper)
    try:
        check_entries(journal, proc, notify, cfg, log_path)
    finally:
        code = stop(proc, notify)
    assert code == 0
    journal.close()


def test_stderr_when_journal_stream_names_another_file(tmp_path):
    """JOURNAL_STREAM inherited by a redirected stderr (`blocksnapd 2>log` from a service's
    shell) must not send the logs to the journal."""
    journal = FakeJournal(tmp_path / "journal.sock")
    proc, notify, log_path, _ = run_daemon(
        tmp_path, journal_stream=False, env_extra={"BLOCKSNAP_JOURNAL_SOCKET": journal.path})
    assert stop(proc, notify) == 0
    journal.close()
    assert journal.entries == []
    assert "created volume jdemo" in log_path.read_text()
