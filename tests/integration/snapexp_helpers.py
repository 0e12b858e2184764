"""Helpers for the snapshot export, diff and restore tests (test_snapshot_export*.py,
test_diff*.py, test_restore_*.py); no tests here.

Snapshots are taken with `blocksnapctl snapshot create VOL --wait` when this build has it,
else through the test-only org.blocksnap1.Testing.CreateSnapshot (the daemon runs with
`--test-clock`), which replies once the snapshot has completed. Nothing sleeps.
"""
import hashlib
import json
import pathlib
import subprocess

import nbd

START = "2026-01-05T02:59:00Z"
CHUNK = 64 * 1024


def snap_daemon(daemon_factory, tmp_path, subdir="d", extra_args=()):
    pdir = pathlib.Path(tmp_path) / f"policies-{subdir}"
    pdir.mkdir(parents=True, exist_ok=True)
    d = daemon_factory(subdir=subdir, extra_args=["--policy-dir", str(pdir), "--test-clock",
                                                   START, *extra_args])
    return d.start()


def busctl(d, interface, method, signature="", *args, check=True):
    cmd = ["busctl", f"--address=unix:path={d.control_path}", "--json=short", "call",
           "org.blocksnap1", "/org/blocksnap1", f"org.blocksnap1.{interface}", method]
    if signature:
        cmd += [signature] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not check:
        return p
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}"
    out = p.stdout.strip()
    return json.loads(out)["data"] if out else []


def has_ctl(d, *words):
    """True when this blocksnapctl knows the subcommand `words`."""
    p = d.ctl(*words, "--help", check=False)
    return p.returncode == 0


def create_snapshot(d, volume):
    if has_ctl(d, "snapshot", "create"):
        out = d.ctl_json("snapshot", "create", volume, "--wait")
        snap = out.get("id") if isinstance(out, dict) else None
        assert snap, out
        return snap
    return busctl(d, "Testing", "CreateSnapshot", "sa{ss}", volume, 0)[0]


def delete_snapshot(d, snap):
    if has_ctl(d, "snapshot", "delete"):
        d.ctl("snapshot", "delete", snap)
        return
    busctl(d, "Manager", "DeleteSnapshot", "s", snap)


def dump_snapshot(d, snap, path):
    """`snapshot dump` into path; False when this build has no dump command."""
    if not has_ctl(d, "snapshot", "dump"):
        return False
    d.ctl("snapshot", "dump", snap, str(path))
    return True


def diff_ranges(d, s1, s2):
    """[(offset, length)] from `snapshot diff --json`, or None when not available."""
    if has_ctl(d, "snapshot", "diff"):
        out = d.ctl_json("snapshot", "diff", s1, s2)
        rows = out.get("ranges", out) if isinstance(out, dict) else out
        return [(int(r["offset"]), int(r["length"])) for r in rows]
    p = busctl(d, "Manager", "DiffSnapshots", "ss", s1, s2, check=False)
    if p.returncode != 0:
        return None
    return [(int(a), int(b)) for a, b in json.loads(p.stdout)["data"][0]]


def connect(d, export, meta_contexts=()):
    h = nbd.NBD()
    for c in meta_contexts:
        h.add_meta_context(c)
    h.connect_uri(d.uri(export))
    return h


def write(d, volume, writes):
    """writes: [(offset, bytes)] through libnbd on the live volume, flushed."""
    h = connect(d, volume)
    for off, data in writes:
        # The export wants 4 KiB-aligned requests: read-modify-write the edges.
        start, end = off // 4096 * 4096, -(-(off + len(data)) // 4096) * 4096
        buf = bytearray(h.pread(end - start, start))
        buf[off - start:off - start + len(data)] = data
        h.pwrite(bytes(buf), start)
    h.flush()
    h.shutdown()


def pattern(seed, length):
    out = bytearray()
    i = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:length])


def apply(image, writes):
    for off, data in writes:
        image[off:off + len(data)] = data


def read_export(d, export, size):
    h = connect(d, export)
    out = bytearray()
    step = 4 << 20
    for off in range(0, size, step):
        out += h.pread(min(step, size - off), off)
    h.shutdown()
    return bytes(out)


def nbdinfo_map(d, export, context="base:allocation"):
    p = subprocess.run(["nbdinfo", "--json", f"--map={context}", d.uri(export)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [(e["offset"], e["length"], e["type"]) for e in json.loads(p.stdout)]


def merge_runs(ranges):
    out = []
    for off, length in sorted(ranges):
        if out and out[-1][0] + out[-1][1] >= off:
            end = max(out[-1][0] + out[-1][1], off + length)
            out[-1] = (out[-1][0], end - out[-1][0])
        else:
            out.append((off, length))
    return out


def chunk_round(ranges, size, chunk=CHUNK):
    """Byte ranges rounded out to whole chunks (clipped at size), merged."""
    out = []
    for off, length in ranges:
        start = off // chunk * chunk
        end = min(size, -(-(off + length) // chunk) * chunk)
        out.append((start, end - start))
    return merge_runs(out)


def flagged(extents, bit):
    """Merged (offset, length) runs of the extents whose type has `bit` set."""
    return merge_runs([(o, n) for o, n, t in extents if t & bit])


# --- restore -----------------------------------------------------------------------------

def restore_daemon(daemon_factory, tmp_path, rate=None, subdir="d"):
    """A daemon whose config sets hydrate_rate (e.g. "256K"; None = unlimited)."""
    extra = []
    if rate is not None:
        cfg = pathlib.Path(tmp_path) / f"config-{subdir}.yaml"
        cfg.write_text(f"hydrate_rate: {rate}\n")
        extra = ["--config", str(cfg)]
    return snap_daemon(daemon_factory, tmp_path, subdir=subdir, extra_args=extra)


def show(d, volume):
    return d.ctl_json("volume", "show", volume)


def wait_hydrated(d, volume, timeout=120):
    """Polls `volume show` (bounded) until every byte is hydrated and the volume available."""
    import time
    end = time.monotonic() + timeout
    while True:
        v = show(d, volume)
        if v["hydrated_bytes"] == v["hydrate_total_bytes"] and v["state"] == "available":
            return v
        assert time.monotonic() < end, f"{volume} did not finish hydrating: {v}"
        time.sleep(0.05)


def status(d):
    return d.ctl_json("status")
