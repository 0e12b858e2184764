"""A real blocksnapd under test: start with readiness from sd_notify, stop by pid, clients.

Shared by the integration tests (tests/integration/conftest.py) and the benchmarks
(tests/bench/). Needs no pytest. Run with /usr/bin/python3 (it has libnbd's `nbd` module).
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("BLOCKSNAP_BUILD", REPO / "build"))
DAEMON = BUILD / "daemon" / "blocksnapd"
CTL = BUILD / "daemon" / "ctl" / "blocksnapctl"
READY_TIMEOUT = 60


def wait_until(condition, what, timeout=30):
    """Calls condition() until it returns something true, and returns that; fails after
    `timeout` seconds. Only for state the daemon reaches on its own timer, with no event to
    wait on (hydration's retry backoff, RocksDB's recovery); anything a reply or signal
    orders is checked after that reply instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotifyListener:
    """An AF_UNIX datagram socket playing systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, key, proc, timeout=READY_TIMEOUT):
        """Blocks until a datagram contains the line `key` (e.g. READY=1). Fails early if the
        process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(key in m.splitlines() for m in self.messages):
                return True
            if proc is not None and proc.poll() is not None:
                return False
            self.sock.settimeout(0.2)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append(data.decode(errors="replace"))
        return False

    def close(self):
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class Daemon:
    """A blocksnapd process under test."""

    def __init__(self, tmp, extra_args=(), env=None, listen=True, unix=True, binary=DAEMON):
        self.tmp = pathlib.Path(tmp)
        self.binary = pathlib.Path(binary)
        self.data_dir = self.tmp / "data"
        self.runtime_dir = self.tmp / "run"
        self.control_path = self.runtime_dir / "control.sock"
        self.unix_path = self.runtime_dir / "nbd.sock" if unix else None
        self.port = free_port() if listen else None
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.log_path = self.tmp / "blocksnapd.log"
        self.proc = None
        self.notify = None
        self.start_count = 0

    # -- lifecycle -------------------------------------------------------------------------
    def args(self):
        a = [str(self.binary), "--data-dir", str(self.data_dir), "--runtime-dir",
             str(self.runtime_dir), "--control", str(self.control_path), "--bus", "none",
             "--log-level", "debug"]
        a += ["--listen", f"127.0.0.1:{self.port}"] if self.port else ["--listen", "none"]
        a += ["--unix", str(self.unix_path)] if self.unix_path else ["--unix", "none"]
        return a + self.extra_args

    def start(self, wait_ready=True):
        self.start_count += 1
        self.notify = NotifyListener(self.tmp / f"notify-{self.start_count}.sock")
        env = dict(self.env, NOTIFY_SOCKET=self.notify.path)
        env.pop("JOURNAL_STREAM", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, stdin=subprocess.DEVNULL)
        if wait_ready and not self.notify.wait_for("READY=1", self.proc):
            code = self.proc.poll()
            self.kill9()
            raise RuntimeError(f"blocksnapd did not become ready (exit {code}):\n"
                               + self.log_text())
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("blocksnapd did not stop on SIGTERM:\n" + self.log_text())
        code = self.proc.returncode
        self._close()
        return code

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def restart(self):
        code = self.stop()
        assert code == 0, f"blocksnapd exited {code} on SIGTERM:\n{self.log_text()}"
        return self.start()

    def _close(self):
        self.proc = None
        if self.notify:
            self.notify.close()
            self.notify = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- clients ---------------------------------------------------------------------------
    def ctl(self, *args, check=True, json_out=False, timeout=120, input=None):
        """Runs blocksnapctl against this daemon. check=True raises on non-zero exit."""
        cmd = [str(CTL), "--control", str(self.control_path)]
        if json_out:
            cmd.append("--json")
        cmd += [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr}")
        return p

    def ctl_json(self, *args):
        return json.loads(self.ctl(*args, json_out=True).stdout)

    def uri(self, export):
        return f"nbd://127.0.0.1:{self.port}/{export}"

    def unix_uri(self, export):
        return f"nbd+unix:///{export}?socket={self.unix_path}"


def stop_then_remove(daemon, base):
    """For tests that run a daemon in a directory of their own (not pytest's tmp_path): stops
    it, asserting a clean exit, and removes base even when the stop fails or times out."""
    try:
        if daemon.proc is not None:
            assert daemon.stop() == 0, daemon.log_text()
    finally:
        shutil.rmtree(base, ignore_errors=True)
