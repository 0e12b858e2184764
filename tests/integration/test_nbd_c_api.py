"""libnbd's C API against a real blocksnapd: tests/unit/nbd/libnbd_client.cc (built as
nbd_libnbd_client) lists exports, checks size and block sizes, random writes and reads
verified byte for byte, flush, FUA, trim then zeroes, zero with and without NO_HOLE and the
allocation each leaves, block status over holes and data, 64 aio requests in flight, and 4
connections (multi-conn) writing disjoint regions then reading one image."""
import subprocess

from conftest import BUILD

CLIENT = BUILD / "tests" / "unit" / "nbd" / "nbd_libnbd_client"


def run_client(list_uri, export_uri, export):
    assert CLIENT.exists(), f"{CLIENT} not built"
    p = subprocess.run([str(CLIENT), list_uri, export_uri, export], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_c_api_over_tcp(daemon):
    daemon.ctl("volume", "create", "capi", "--size", "64M")
    out = run_client(f"nbd://127.0.0.1:{daemon.port}", daemon.uri("capi"), "capi")
    assert out.count("ok ") == 7, out


def test_c_api_over_unix(daemon):
    daemon.ctl("volume", "create", "capi", "--size", "64M")
    out = run_client(f"nbd+unix:///?socket={daemon.unix_path}", daemon.unix_uri("capi"), "capi")
    assert out.count("ok ") == 7, out
