"""Socket activation: systemd-socket-activate listens on a TCP address and a unix socket, starts
blocksnapd on the first connection with LISTEN_FDS, and a real NBD client (nbdinfo) is served
through the inherited sockets; the daemon's own configured address stays unbound."""
import os
import signal
import socket
import subprocess
import threading

from conftest import DAEMON, NotifyListener, free_port

TIMEOUT = 60


class Activator:
    """systemd-socket-activate running blocksnapd; its stderr (and then the daemon's, which
    inherits it across exec) is collected by a thread."""

    def __init__(self, tmp, extra_args=()):
        self.tmp = tmp
        self.port = free_port()
        self.unused_port = free_port()
        self.nbd_sock = tmp / "activated-nbd.sock"
        self.notify = NotifyListener(tmp / "notify.sock")
        cfg = tmp / "cfg.yaml"
        cfg.write_text("volumes:\n  - name: demo\n    size: 64M\n")
        daemon_args = [str(DAEMON), "--config", str(cfg), "--data-dir", str(tmp / "data"),
                       "--runtime-dir", str(tmp / "run"), "--control",
                       str(tmp / "run" / "control.sock"), "--bus", "none",
                       "--log-level", "debug", "--listen", f"127.0.0.1:{self.unused_port}",
                       "--unix", str(tmp / "run" / "configured-nbd.sock")] + list(extra_args)
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", f"127.0.0.1:{self.port}", "-l", str(self.nbd_sock),
             "--fdname=nbd:nbd", "-E", f"NOTIFY_SOCKET={self.notify.path}"] + daemon_args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines = []
        self.listening = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))
            if sum("Listening on" in ln for ln in self.lines) >= 2:
                self.listening.set()
        self.listening.set()

    def log(self):
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=TIMEOUT)
        self.reader.join(timeout=TIMEOUT)
        self.notify.close()
        return code


def test_socket_activated_daemon_serves_the_inherited_sockets(tmp_path):
    a = Activator(tmp_path)
    try:
        assert a.listening.wait(TIMEOUT) and a.proc.poll() is None, a.log()
        # The first client's connection is what starts the daemon (socket activation proper):
        # it waits in the listen backlog until blocksnapd accepts on the inherited socket.
        p = subprocess.run(["nbdinfo", "--list", f"nbd://127.0.0.1:{a.port}"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr + a.log()
        assert 'export="demo"' in p.stdout, p.stdout
        assert a.notify.wait_for("READY=1", a.proc), a.log()

        # systemd-socket-activate exec()s the daemon: its pid is the daemon's.
        assert f"socket activation: 2 listening socket(s): 127.0.0.1:{a.port}, {a.nbd_sock}" \
            in a.log()
        ready = next(m for m in a.notify.messages if "READY=1" in m.splitlines())
        assert f"STATUS=Serving 1 volume(s) over NBD on 127.0.0.1:{a.port}, {a.nbd_sock}" \
            in ready.splitlines()

        p = subprocess.run(["nbdinfo", "--list", f"nbd+unix:///?socket={a.nbd_sock}"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 0 and 'export="demo"' in p.stdout, p.stderr + a.log()
        p = subprocess.run(["nbdinfo", "--size", f"nbd://127.0.0.1:{a.port}/demo"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 0 and p.stdout.strip() == str(64 << 20), p.stderr

        # The configured address and unix socket are not used when sockets are inherited.
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", a.unused_port)) != 0
        assert not (tmp_path / "run" / "configured-nbd.sock").exists()
    finally:
        code = a.stop()
    assert code == 0, a.log()
    # The inherited unix socket belongs to whoever made it (systemd): the daemon leaves it.
    assert os.path.exists(a.nbd_sock)
