"""TRIM on a file system that cannot punch holes (ramfs has no fallocate at all): TRIM is
advisory, so it succeeds and writes nothing (the bytes stay as they were), while
WRITE_ZEROES still falls back to writing zeroes and FAST_ZERO still answers ENOTSUP."""
import subprocess

import nbd
import pytest

MiB = 1 << 20


@pytest.fixture
def ramfs_daemon(daemon_factory):
    d = daemon_factory()
    vols = d.data_dir / "volumes"
    vols.mkdir(parents=True)
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(vols)], check=True)
    try:
        yield d.start()
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                assert d.stop() == 0, d.log_text()
        finally:
            subprocess.run(["umount", "-l", str(vols)], check=False)


def test_trim_without_punch_hole_succeeds_and_writes_nothing(ramfs_daemon):
    d = ramfs_daemon
    d.ctl("volume", "create", "v", "--size", str(8 * MiB))
    h = nbd.NBD()
    try:
        h.connect_uri(d.unix_uri("v"))
        assert h.can_trim() and h.can_zero() and h.can_fast_zero()
        data = bytes([0xAB]) * (4 * MiB)
        h.pwrite(data, 0)

        # The first TRIM learns that holes cannot be punched, the second takes the shortcut:
        # both succeed and neither turns into a write of zeroes.
        h.trim(1 * MiB, 0)
        h.trim(1 * MiB, 2 * MiB, nbd.CMD_FLAG_FUA)
        assert h.pread(4 * MiB, 0) == data

        # WRITE_ZEROES must zero: it still writes them where it cannot punch.
        h.zero(64 * 1024, 1 * MiB)
        assert h.pread(64 * 1024, 1 * MiB) == bytes(64 * 1024)
        assert h.pread(64 * 1024, 1 * MiB + 64 * 1024) == data[:64 * 1024]
        # FAST_ZERO: refuse rather than write.
        with pytest.raises(nbd.Error) as e:
            h.zero(64 * 1024, 3 * MiB, nbd.CMD_FLAG_FAST_ZERO)
        assert e.value.errno == "ENOTSUP"
        assert h.pread(64 * 1024, 3 * MiB) == data[:64 * 1024]
        h.shutdown()
    finally:
        del h
