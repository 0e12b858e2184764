"""NBD servers to benchmark side by side: blocksnapd, qemu-nbd and nbdkit, each serving a raw
image of the same size on the same kind of storage. Every server is started by us, reached
on a free loopback port, and stopped by its pid."""
import pathlib
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from harness import DAEMON, Daemon, free_port  # noqa: E402

VOLUME = "bench"


def wait_port(port, proc, timeout=30):
    """Waits until the server accepts on port (it has no readiness protocol of its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling a port: not a test, no event to wait on
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Peer:
    """A third-party NBD server over a raw file."""

    def __init__(self, name, argv_fn, image):
        self.name, self.argv_fn, self.image = name, argv_fn, image
        self.proc = None
        self.port = None
        # Beside the image, not a pipe: a pipe nobody reads would stall a server that logs.
        self.log = pathlib.Path(f"{image}.log")

    def start(self):
        self.port = free_port()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv_fn(self.port, self.image),
                                         stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_port(self.port, self.proc)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{self.name}: {e}: {self.log.read_text()[-500:]}") from None
        return self

    def uri(self):
        return f"nbd://127.0.0.1:{self.port}/{VOLUME}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # by its pid: our own child
                self.proc.wait()
        self.proc = None


def qemu_nbd(cache):
    def argv(port, image):
        return ["qemu-nbd", "-f", "raw", "--aio=io_uring", f"--cache={cache}", "-x", VOLUME,
                "-b", "127.0.0.1", "-p", str(port), "-t", "-e", "8", str(image)]
    return argv


def nbdkit_file(port, image):
    return ["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port), "-e", VOLUME, "file",
            str(image)]


class Blocksnapd:
    """blocksnapd with one volume, its data dir under `root`."""

    def __init__(self, root, size, extra_args=(), env=None, binary=DAEMON):
        self.root = pathlib.Path(root)
        self.size = size
        self.extra_args = list(extra_args)
        self.env, self.binary = env, binary
        self.name = "blocksnapd"
        self.daemon = None

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        cfg = self.root / "blocksnapd.yaml"
        cfg.write_text(f"log_level: warn\nvolumes:\n  - name: {VOLUME}\n    size: {self.size}\n")
        self.daemon = Daemon(self.root, extra_args=["--config", str(cfg)] + self.extra_args,
                             env=self.env, binary=self.binary)
        self.daemon.start()
        return self

    def image(self):
        return next((self.daemon.data_dir / "volumes").glob("*.img"))

    def uri(self):
        return self.daemon.uri(VOLUME)

    def stop(self):
        if self.daemon:
            self.daemon.stop()
        self.daemon = None
