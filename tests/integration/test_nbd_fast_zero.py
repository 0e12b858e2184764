"""WRITE_ZEROES on a file system that cannot zero a range in place (tmpfs has no
FALLOC_FL_ZERO_RANGE): NO_HOLE falls back to writing zeroes, NO_HOLE|FAST_ZERO answers
ENOTSUP as the spec asks, and a plain zero still punches a hole."""
import subprocess

import nbd
import pytest

MiB = 1 << 20


def test_fast_zero_enotsup_and_fallback_on_tmpfs(daemon_factory, tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256M", "tmpfs", str(mnt)], check=True)
    d = None
    try:
        d = daemon_factory(subdir="tmpfs/d").start()
        d.ctl("volume", "create", "v1", "--size", "16M")
        h = nbd.NBD()
        h.connect_uri(d.uri("v1"))
        assert h.can_fast_zero()
        h.pwrite(b"\x99" * (4 * MiB), 0)
        with pytest.raises(nbd.Error) as e:
            h.zero(MiB, 0, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FAST_ZERO)
        assert e.value.errno == "ENOTSUP"
        assert h.pread(MiB, 0) == b"\x99" * MiB  # a failed fast zero changed nothing
        h.zero(MiB, 0, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)  # slow path: writes zeroes
        assert h.pread(MiB, 0) == bytes(MiB)
        h.zero(MiB, MiB, nbd.CMD_FLAG_FAST_ZERO)  # punching a hole is fast on tmpfs
        assert h.pread(2 * MiB, 0) == bytes(2 * MiB)
        assert h.pread(MiB, 2 * MiB) == b"\x99" * MiB
        h.shutdown()
    finally:
        try:
            if d is not None and d.proc is not None:
                assert d.stop() == 0
        finally:
            subprocess.run(["umount", str(mnt)], check=False)  # even when the stop failed
