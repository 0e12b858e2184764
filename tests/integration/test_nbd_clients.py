"""Real NBD clients against blocksnapd: qemu-io, qemu-img, nbdcopy, nbdinfo, nbd-client, fio."""
import json
import os
import subprocess

import pytest

MiB = 1 << 20


def run(*cmd, timeout=300, cwd=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       cwd=cwd)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture
def vol(daemon):
    daemon.ctl("volume", "create", "v1", "--size", "64M")
    return daemon


def qemu_io(uri, *commands):
    args = ["qemu-io", "-f", "raw"]
    for c in commands:
        args += ["-c", c]
    out = run(*args, uri)
    # qemu-io's exit status does not report a failed pattern check; its output does.
    assert "Pattern verification failed" not in out, out
    assert "error" not in out.lower(), out
    return out


def test_qemu_io_patterns_discard_and_write_zeroes(vol):
    uri = vol.uri("v1")
    qemu_io(uri, "write -P 0xab 0 1M", "write -P 0xcd 1M 1M", "read -P 0xab 0 1M",
            "read -P 0xcd 1M 1M")
    qemu_io(uri, "discard 0 512k", "read -P 0 0 512k", "read -P 0xab 512k 512k")
    qemu_io(uri, "write -z 1M 64k", "read -P 0 1M 64k", "read -P 0xcd 1088k 960k")
    # The check above can fail: a wrong pattern is reported.
    out = subprocess.run(["qemu-io", "-f", "raw", "-c", "read -P 0x11 1088k 4k", uri],
                         capture_output=True, text=True).stdout
    assert "Pattern verification failed" in out
    # Over the unix socket too.
    qemu_io(vol.unix_uri("v1"), "read -P 0xcd 1088k 960k", "write -P 0x77 32M 4k",
            "read -P 0x77 32M 4k")


def test_qemu_img_convert_and_compare(vol, tmp_path):
    src = tmp_path / "random.raw"
    src.write_bytes(os.urandom(64 * MiB))
    uri = vol.uri("v1")
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, uri)
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri)
    # compare notices a difference
    with open(src, "r+b") as f:
        f.seek(5 * MiB)
        f.write(b"\x00changed")
    p = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), uri],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stdout + p.stderr


def test_nbdcopy_both_ways(vol, tmp_path):
    src = tmp_path / "in.raw"
    data = bytearray(os.urandom(64 * MiB))
    data[8 * MiB:16 * MiB] = bytes(8 * MiB)  # a zero run: nbdcopy sends it as zeroes
    src.write_bytes(data)
    run("nbdcopy", src, vol.uri("v1"))
    out = tmp_path / "out.raw"
    run("nbdcopy", vol.unix_uri("v1"), out)
    assert out.read_bytes() == bytes(data)


def test_nbdinfo_list_map_json(vol):
    vol.ctl("volume", "create", "other", "--size", "1M")
    listing = run("nbdinfo", "--list", f"nbd://127.0.0.1:{vol.port}")
    assert 'export="v1"' in listing and 'export="other"' in listing
    info = json.loads(run("nbdinfo", "--json", vol.uri("v1")))
    export = info["exports"][0]
    assert export["export-size"] == 64 * MiB
    assert export["can_multi_conn"] is True
    assert export["block_size_minimum"] == 512
    run("qemu-io", "-f", "raw", "-c", "write -P 1 1M 1M", vol.uri("v1"))
    lines = [l.split() for l in run("nbdinfo", "--map", vol.uri("v1")).splitlines()]
    assert [l[:3] for l in lines] == [["0", str(MiB), "3"], [str(MiB), str(MiB), "0"],
                                       [str(2 * MiB), str(62 * MiB), "3"]]
    run("nbdinfo", "--can", "multi-conn", vol.uri("v1"))  # exit 0 = it can


def test_nbd_client_lists_exports(vol):
    vol.ctl("volume", "create", "second", "--size", "1M")
    out = run("nbd-client", "-l", "127.0.0.1", vol.port)
    names = [l.split(":")[0] for l in out.splitlines() if l and not l.startswith("Negotiation")]
    assert sorted(names) == ["second", "v1"]


def test_fio_nbd_engine_verify(vol, tmp_path):
    # cwd: fio leaves its verify state file there.
    out = run("fio", "--name=verify", "--ioengine=nbd", f"--uri={vol.uri('v1')}",
              "--rw=randwrite", "--bs=4k", "--size=32M", "--iodepth=16", "--verify=crc32c",
              "--do_verify=1", "--output-format=json", timeout=600, cwd=tmp_path)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    assert job["error"] == 0
    assert job["write"]["io_bytes"] == 32 * MiB
    assert job["read"]["io_bytes"] == 32 * MiB  # the verify pass read everything back
