"""Corruption: one chunk value damaged inside RocksDB (tests/tools/corrupt_chunk, daemon
stopped). `snapshot verify` names it and exits non-zero; `snapshot dump` fails with a
corruption error and leaves no file instead of returning wrong bytes."""
import json
import os

from test_snapshot_common import CHUNK, MiB, corrupt_chunk, create_volume, snapshot, write


def test_verify_names_bad_chunk_and_dump_fails(daemon, tmp_path):
    create_volume(daemon, "v", 16 * MiB)
    write(daemon, "v", [(0, os.urandom(2 * MiB))])
    rec = snapshot(daemon, "v")
    assert daemon.ctl("snapshot", "verify", rec["id"]).returncode == 0

    assert daemon.stop() == 0
    bad_hash = corrupt_chunk(daemon.data_dir)
    assert len(bad_hash) == 64
    daemon.start()

    p = daemon.ctl("snapshot", "verify", rec["id"], check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    line = p.stderr.strip()
    assert line.startswith("blocksnapctl: ") and "\n" not in line
    assert bad_hash in line and "chunk " in line, line
    v = daemon.ctl("snapshot", "verify", rec["id"], json_out=True, check=False)
    assert v.returncode == 1
    doc = json.loads(v.stdout)
    assert doc["ok"] is False and len(doc["bad"]) == 1
    bad_index = doc["bad"][0]["chunk"]
    assert 0 <= bad_index < 2 * MiB // CHUNK
    assert bad_hash in doc["bad"][0]["problem"]

    out = tmp_path / "bad.raw"
    p = daemon.ctl("snapshot", "dump", rec["id"], str(out), check=False)
    assert p.returncode == 1
    assert "corrupt" in p.stderr.lower() or "mismatch" in p.stderr.lower(), p.stderr
    assert not out.exists()
