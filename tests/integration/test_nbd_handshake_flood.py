"""A client that pipelines thousands of NBD_OPT_LIST options and reads none of the replies
must cost the daemon a bounded amount of memory and work: the handshake answers options in
bounded batches, one batch per drained send, and reads no more options while replies are
unsent. Another client on the same io loop is served meanwhile, and every option is still
answered, in order, once the flooding client reads.

The daemon runs one io loop so that both clients share it. Synchronisation is by bytes on the
sockets, never by time (see the steps in the test).
"""
import socket
import struct

import nbd

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
OPT_LIST, OPT_ABORT = 3, 2
REP_ACK, REP_SERVER = 1, 2
MiB = 1 << 20
SO_SNDBUFFORCE = 32  # linux; not in Python's socket module

VOLUMES = 64
FIRST_BATCH = 1024    # enough replies to stop the daemon reading (> 1 MiB unsent)
SECOND_BATCH = 16384  # 256 KiB of option headers: one full receive buffer


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def recv_exact(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError(f"closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def read_list_answer(s, names):
    """Reads one complete LIST answer, checks it names every volume, returns its bytes."""
    raw = b""
    seen = []
    while True:
        head = recv_exact(s, 20)
        magic, opt, rtype, length = struct.unpack(">QIII", head)
        assert (magic, opt) == (OPT_REPLY_MAGIC, OPT_LIST), head.hex()
        data = recv_exact(s, length)
        raw += head + data
        if rtype == REP_ACK:
            assert length == 0
            break
        assert rtype == REP_SERVER, hex(rtype)
        (nlen,) = struct.unpack(">I", data[:4])
        seen.append(data[4:4 + nlen].decode())
        assert data[4 + nlen:].startswith(b"blocksnap volume vol-")
    assert sorted(seen) == sorted(names)
    return raw


def served(daemon, name, byte):
    """A second client on the same loop does a real write and read-back."""
    h = nbd.NBD()
    h.connect_uri(daemon.unix_uri(name))
    h.pwrite(bytes([byte]) * 4096, 0)
    assert h.pread(4096, 0) == bytes([byte]) * 4096
    h.shutdown()


def test_pipelined_lists_without_reading_stay_bounded(daemon_factory):
    d = daemon_factory(extra_args=["--io-threads", "1"]).start()
    # Long names make each LIST answer large: 64 volumes, about 8 KB per answer.
    names = [f"flood{i:02d}-" + "x" * 56 for i in range(VOLUMES)]
    for n in names:
        assert len(n) == 64
        d.ctl("volume", "create", n, "--size", "1M")
    served(d, names[0], 1)
    baseline = vm_kib(d.pid, "VmHWM")

    s = socket.socket(socket.AF_UNIX)
    # Room in the kernel for the second batch while the daemon reads nothing.
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 * MiB)
    except PermissionError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MiB)
    s.connect(str(d.unix_path))
    s.settimeout(120)  # a guard against a hang, not a synchronisation
    magic, opt, flags = struct.unpack(">QQH", recv_exact(s, 18))
    assert (magic, opt) == (NBDMAGIC, IHAVEOPT)
    list_opt = struct.pack(">QII", IHAVEOPT, OPT_LIST, 0)

    # 1. Flags and a first batch: far more replies than the daemon keeps unsent, so it stops
    #    reading this socket.
    s.sendall(struct.pack(">I", 3) + list_opt * FIRST_BATCH)
    # 2. A second batch lands in the kernel's buffers, unread by the daemon.
    s.sendall(list_opt * SECOND_BATCH)
    # Another client on the only io loop is served while the flooder reads nothing.
    served(d, names[1], 2)
    # 3. Read the first batch's answers. Before the last of them can be sent, the daemon has
    #    gone back to the socket and received the second batch (the old code then answered
    #    all 16 384 options at once, about 130 MB); the next client is accepted after that.
    answer = read_list_answer(s, names)
    assert len(answer) > 7000
    rest = recv_exact(s, len(answer) * (FIRST_BATCH - 1))
    assert rest == answer * (FIRST_BATCH - 1)
    served(d, names[2], 3)
    grown_mib = (vm_kib(d.pid, "VmHWM") - baseline) / 1024
    assert grown_mib < 64, f"daemon peak RSS grew by {grown_mib:.0f} MiB"

    # 4. Every option of the second batch is answered, in order, once the client reads.
    for _ in range(SECOND_BATCH // 1024):
        assert recv_exact(s, len(answer) * 1024) == answer * 1024
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_ABORT, 0))
    assert recv_exact(s, 20) == struct.pack(">QIII", OPT_REPLY_MAGIC, OPT_ABORT, REP_ACK, 0)
    assert s.recv(1) == b""
    s.close()
    served(d, names[3], 4)
