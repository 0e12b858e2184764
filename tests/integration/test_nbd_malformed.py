"""Malformed and hostile input, each on its own connection, while a well-behaved libnbd
client keeps working (asserted after every case): the bad connection is answered or closed
as the NBD spec says, the daemon and everyone else carry on.
"""
import os
import socket
import struct
import time

import nbd
import pytest

MiB = 1 << 20
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_GO, OPT_STRUCTURED = 1, 2, 3, 7, 8
REP_ACK, REP_INFO = 1, 3
REP_ERR_UNSUP, REP_ERR_INVALID = (1 << 31) | 1, (1 << 31) | 3
CMD_READ, CMD_WRITE, CMD_FLUSH, CMD_BLOCK_STATUS = 0, 1, 3, 7
FLAG_FUA = 1
EINVAL, ENOSPC, EPERM = 22, 28, 1


class Raw:
    """A hand-driven NBD client on a plain socket."""

    def __init__(self, daemon, unix=False):
        if unix:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.connect(str(daemon.unix_path))
        else:
            self.s = socket.create_connection(("127.0.0.1", daemon.port))
        # A guard against hanging forever if the server misbehaves, not a synchronisation.
        self.s.settimeout(60)
        magic, opt, flags = struct.unpack(">QQH", self.recv(18))
        assert (magic, opt) == (NBDMAGIC, IHAVEOPT) and flags & 1

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def send(self, data):
        self.s.sendall(data)

    def option(self, opt, data=b""):
        self.send(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def reply(self):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv(20))
        assert magic == OPT_REPLY_MAGIC
        return opt, rtype, self.recv(length)

    def go(self, name=b"v1"):
        self.option(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))
        while True:
            opt, rtype, data = self.reply()
            assert opt == OPT_GO
            if rtype == REP_ACK:
                return
            assert rtype == REP_INFO, hex(rtype)

    def start(self, flags=3):
        self.send(struct.pack(">I", flags))

    def request(self, cmd, offset, length, handle=1, flags=0, payload=b""):
        self.send(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, handle, offset, length)
                  + payload)

    def simple_reply(self):
        magic, error, handle = struct.unpack(">IIQ", self.recv(16))
        assert magic == SIMPLE_REPLY_MAGIC
        return error, handle

    def closed(self):
        """True once the server has closed the connection."""
        try:
            while self.s.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


@pytest.fixture
def env(daemon):
    daemon.ctl("volume", "create", "v1", "--size", "64M")
    witness = nbd.NBD()
    witness.connect_uri(daemon.uri("v1"))
    state = {"n": 0}

    def still_works():
        state["n"] += 1
        data = os.urandom(4096)
        off = state["n"] * 4096
        witness.pwrite(data, off)
        assert witness.pread(4096, off) == data
        assert daemon.proc.poll() is None, "the daemon died"

    still_works()
    yield daemon, still_works
    still_works()
    witness.shutdown()


def session(daemon, unix=False):
    r = Raw(daemon, unix)
    r.start()
    r.go()
    return r


def test_wrong_option_magic(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start()
    r.send(struct.pack(">QII", 0x1122334455667788, OPT_LIST, 0))
    assert r.closed()
    ok()


def test_unknown_client_flag_drops(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start(flags=1 << 7)
    assert r.closed()
    ok()


def test_unknown_option_then_session_goes_on(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start()
    r.option(4242, b"whatever")
    assert r.reply()[:2] == (4242, REP_ERR_UNSUP)
    r.option(OPT_LIST, b"data-for-an-option-that-takes-none")
    assert r.reply()[:2] == (OPT_LIST, REP_ERR_INVALID)
    r.go()
    r.request(CMD_READ, 0, 512)
    assert r.simple_reply() == (0, 1)
    assert len(r.recv(512)) == 512
    ok()
    r.close()


def test_unknown_export_name_closes(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start()
    r.option(OPT_EXPORT_NAME, b"no-such-volume")
    assert r.closed()
    ok()


def test_wrong_request_magic(env):
    daemon, ok = env
    r = session(daemon)
    r.send(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 1, 0, 512))
    assert r.closed()
    ok()


def test_truncated_header(env):
    daemon, ok = env
    r = session(daemon, unix=True)
    r.send(struct.pack(">IHHQ", REQUEST_MAGIC, 0, CMD_READ, 1))  # 16 of 28 bytes
    r.s.shutdown(socket.SHUT_WR)
    assert r.closed()
    ok()


def test_oversized_write_refused_before_payload(env):
    daemon, ok = env
    r = session(daemon)
    r.request(CMD_WRITE, 0, 64 * MiB, handle=9)  # no payload follows
    assert r.simple_reply() == (EINVAL, 9)
    assert r.closed()
    ok()


def test_oversized_read_is_einval_and_connection_lives(env):
    daemon, ok = env
    r = session(daemon)
    r.request(CMD_READ, 0, 33 * MiB, handle=3)
    assert r.simple_reply() == (EINVAL, 3)
    r.request(CMD_FLUSH, 0, 0, handle=4)
    assert r.simple_reply() == (0, 4)
    ok()
    r.close()


def test_unknown_command_and_bad_flags(env):
    daemon, ok = env
    r = session(daemon)
    r.request(99, 0, 0, handle=5)
    assert r.simple_reply() == (EINVAL, 5)
    r.request(CMD_READ, 0, 512, handle=6, flags=1 << 5)  # no such flag
    assert r.simple_reply() == (EINVAL, 6)
    r.request(CMD_BLOCK_STATUS, 0, 512, handle=7)  # no meta context negotiated
    assert r.simple_reply() == (EINVAL, 7)
    r.request(CMD_READ, 0, 0, handle=8)  # zero length: answered, not an attack
    assert r.simple_reply() == (0, 8)
    r.request(CMD_READ, 0, 512, handle=10)
    assert r.simple_reply() == (0, 10)
    r.recv(512)
    ok()
    r.close()


def test_out_of_range_and_misaligned_with_libnbd(env):
    daemon, ok = env
    h = nbd.NBD()
    h.connect_uri(daemon.uri("v1"))
    h.set_strict_mode(0)  # let the bad requests reach the server
    cases = [
        (lambda: h.pread(512, 64 * MiB), "EINVAL"),
        (lambda: h.pwrite(b"x" * 512, 64 * MiB), "ENOSPC"),
        (lambda: h.zero(1024, 64 * MiB - 512), "ENOSPC"),
        (lambda: h.trim(1024, 64 * MiB), "EINVAL"),
        (lambda: h.pread(512, 1), "EINVAL"),  # misaligned to the 512 minimum
        (lambda: h.pwrite(b"x" * 100, 0), "EINVAL"),
    ]
    for call, expected in cases:
        with pytest.raises(nbd.Error) as e:
            call()
        assert e.value.errno == expected
        ok()
    assert h.pread(512, 0) is not None  # the connection survived every refusal
    h.shutdown()


def test_garbage_after_handshake(env):
    daemon, ok = env
    r = session(daemon)
    r.send(os.urandom(4096))
    assert r.closed()
    ok()


def test_disconnect_with_requests_in_flight(env):
    daemon, ok = env
    for _ in range(3):
        r = session(daemon)
        for i in range(32):
            r.request(CMD_READ, i * MiB, MiB, handle=i)
        # Away from the witness's blocks: these writes may still land after the close.
        for i in range(8):
            r.request(CMD_WRITE, 32 * MiB + i * 65536, 65536, handle=100 + i,
                      payload=os.urandom(65536))
        r.request(CMD_WRITE, 48 * MiB, MiB, handle=200, payload=b"partial")  # cut short
        r.close()
        ok()


def test_abort_gets_ack(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start()
    r.option(OPT_ABORT)
    assert r.reply()[:2] == (OPT_ABORT, REP_ACK)
    assert r.closed()
    ok()


def test_connection_cap(daemon_factory, tmp_path):
    config = tmp_path / "blocksnapd.yaml"
    config.write_text("max_connections: 3\n")
    d = daemon_factory(extra_args=["--config", str(config)]).start()
    d.ctl("volume", "create", "v1", "--size", "1M")
    held = [session(d) for _ in range(3)]
    # The fourth is closed at once, before any greeting.
    s = socket.create_connection(("127.0.0.1", d.port))
    s.settimeout(60)
    assert s.recv(100) == b""
    s.close()
    # Freeing one makes room again.
    held.pop().close()
    # The server notices the close asynchronously: retry until admitted (bounded).
    deadline = time.monotonic() + 30
    while True:
        h = nbd.NBD()
        try:
            h.connect_uri(d.uri("v1"))
            break
        except nbd.Error:
            assert time.monotonic() < deadline, "a freed connection slot never came back"
            time.sleep(0.05)
    assert h.get_size() == MiB
    h.shutdown()
    for r in held:
        r.close()


def test_oversized_option_closes_before_buffering(env):
    daemon, ok = env
    r = Raw(daemon)
    r.start()
    r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 0x7FFFFFFF) + b"x" * 1024)
    assert r.closed()
    ok()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_replies_is_bounded(env):
    """4 GiB of reads requested, no reply read: the server stops reading requests once its
    per-connection budget is in flight instead of buffering replies without bound."""
    daemon, ok = env
    base = rss_kib(daemon.pid)
    r = session(daemon)
    r.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    r.s.setblocking(False)
    sent = 0
    try:
        for i in range(4096):
            r.s.send(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, i, (i % 64) * MiB, MiB))
            sent += 1
    except BlockingIOError:
        pass  # the server stopped reading: exactly the point
    # Wait (bounded) until the server has taken on its budget of reads: their buffers show.
    deadline = time.monotonic() + 60
    while rss_kib(daemon.pid) < base + 16 * 1024:
        assert time.monotonic() < deadline, "the server never started on the reads"
        ok()
    for _ in range(20):
        ok()  # other clients are served meanwhile
        assert rss_kib(daemon.pid) < base + 400 * 1024, "memory grows with unread replies"
    assert sent > 64
    r.close()
    ok()


def test_handshake_timeout_from_config(daemon_factory, tmp_path):
    """`handshake_timeout` in the config file: a client that never finishes its handshake is
    disconnected once it passes; a client that did finish is not."""
    cfg = tmp_path / "blocksnapd.yaml"
    cfg.write_text("handshake_timeout: 1s\n")
    d = daemon_factory(extra_args=["--config", str(cfg)])
    d.start()
    d.ctl("volume", "create", "v1", "--size", "16M")
    attached = nbd.NBD()
    attached.connect_uri(d.uri("v1"))
    silent = Raw(d)  # read the greeting, then says nothing
    with pytest.raises(EOFError):
        silent.recv(1)  # the server closes it (the 60 s guard would fail the test instead)
    attached.pwrite(b"x" * 4096, 0)
    assert attached.pread(4096, 0) == b"x" * 4096
    attached.shutdown()
