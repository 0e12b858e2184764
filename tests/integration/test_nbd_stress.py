"""Load and hostility at once: four fio jobs (one connection each, multi-conn, disjoint
regions) verify crc32c on one volume and a unix-socket fio job on another, while a thread
keeps opening connections to a third volume that send garbage, random (often invalid)
requests and payloads cut short, and hang up without reading. Every fio job must verify
and the daemon must stop cleanly (the fixture checks its exit status)."""
import os
import random
import socket
import struct
import subprocess
import threading

IHAVEOPT = 0x49484156454F5054
REQUEST_MAGIC = 0x25609513


def hostile_session(port, rng):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    try:
        s.recv(18, socket.MSG_WAITALL)
        if rng.random() < 0.2:
            s.sendall(os.urandom(rng.randrange(1, 2000)))
            return
        s.sendall(struct.pack(">I", 3))
        name = b"junk"
        s.sendall(struct.pack(">QII", IHAVEOPT, 7, 4 + len(name) + 2)
                  + struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
        while True:
            hdr = s.recv(20, socket.MSG_WAITALL)
            if len(hdr) < 20:
                return
            _, _, rtype, length = struct.unpack(">QIII", hdr)
            if length:
                s.recv(length, socket.MSG_WAITALL)
            if rtype == 1:
                break
        reqs = b""
        for i in range(rng.randrange(1, 40)):
            cmd = rng.choice([0, 1, 3, 4, 5, 6, 7, 99])
            length = rng.choice([0, 512, 4096, 65536, 1 << 20])
            off = rng.randrange(0, 80 << 20) & ~511
            reqs += struct.pack(">IHHQQI", REQUEST_MAGIC, rng.choice([0, 1, 2, 4, 8, 16]), cmd,
                                i, off, length)
            if cmd == 1 and rng.random() < 0.8:
                reqs += os.urandom(length)
        if rng.random() < 0.3:
            reqs += os.urandom(100)
        s.sendall(reqs)
    except OSError:
        pass  # the server may close on us first: that is one of the expected outcomes
    finally:
        s.close()


def test_fio_verifies_under_hostile_traffic(daemon, tmp_path):
    daemon.ctl("volume", "create", "a", "--size", "256M")
    daemon.ctl("volume", "create", "b", "--size", "64M")
    daemon.ctl("volume", "create", "junk", "--size", "64M")
    jobs = [
        subprocess.Popen(["fio", "--name=a", "--ioengine=nbd", f"--uri={daemon.uri('a')}",
                          "--rw=randrw", "--bs=4k-256k", "--size=32M", "--offset_increment=64M",
                          "--numjobs=4", "--iodepth=32", "--verify=crc32c",
                          "--verify_backlog=64", "--group_reporting"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=tmp_path),  # fio leaves verify state files in its cwd
        subprocess.Popen(["fio", "--name=b", "--ioengine=nbd", f"--uri={daemon.unix_uri('b')}",
                          "--rw=randwrite", "--bs=4k", "--size=32M", "--iodepth=64",
                          "--verify=crc32c"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=tmp_path),
    ]
    done = threading.Event()
    count = [0]

    def attack():
        rng = random.Random(99)
        while not done.is_set():
            hostile_session(daemon.port, rng)
            count[0] += 1

    t = threading.Thread(target=attack)
    t.start()
    try:
        outputs = [j.communicate(timeout=600)[0] for j in jobs]
    finally:
        done.set()
        t.join(timeout=120)
    for j, out in zip(jobs, outputs):
        assert j.returncode == 0, out
        assert "err= 0" in out, out
    assert count[0] > 0
    assert daemon.proc.poll() is None
