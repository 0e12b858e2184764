"""Helpers for the policy scheduler's integration tests (test_policy_*.py); no tests here.

Every daemon runs with `--test-clock` (a test-only flag): the scheduler's time stands still
until `org.blocksnap1.Testing.SetTime`, which runs the tick due then and replies only when
every snapshot and deletion of it is done. Tests synchronise on that reply; nothing sleeps
and nothing depends on the wall clock. Manual snapshots and the snapshot list come from the
same test-only interface (Testing.CreateSnapshot / ListSnapshots).
"""
import json
import pathlib
import subprocess

START = "2026-01-05T02:59:00Z"


def write_policies(directory, files):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def policy_daemon(daemon_factory, tmp_path, files, start=START, subdir="d"):
    """A started daemon on a test clock at `start` with `files` in its policy dir."""
    pdir = write_policies(tmp_path / "policies", files)
    d = daemon_factory(subdir=subdir, extra_args=["--policy-dir", str(pdir), "--test-clock",
                                                   start])
    d.policy_dir = pdir
    return d.start()


def _unwrap(value):
    """busctl --json=short wraps every variant as {"type": ..., "data": ...}."""
    if isinstance(value, dict) and set(value) == {"type", "data"}:
        return _unwrap(value["data"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


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
    return _unwrap(json.loads(out)["data"]) if out else []


def set_time(d, when):
    """Moves the daemon's test clock; returns the actions of the tick due then."""
    return busctl(d, "Testing", "SetTime", "s", when)[0]


def create_volume(d, name, **tags):
    args = ["volume", "create", name, "--size", "1M"]
    for k, v in tags.items():
        args += ["--tag", f"{k}={v}"]
    return d.ctl(*args).stdout.strip()


def manual_snapshot(d, volume, **tags):
    flat = []
    for k, v in tags.items():
        flat += [k, v]
    return busctl(d, "Testing", "CreateSnapshot", "sa{ss}", volume, len(tags), *flat)[0]


def snapshots(d, volume=None):
    """Every snapshot: dicts with id, volume_id, volume, state, created, tags."""
    rows = busctl(d, "Testing", "ListSnapshots")[0]
    out = [dict(zip(["id", "volume_id", "volume", "state", "created", "tags"], r)) for r in rows]
    return [s for s in out if volume is None or s["volume"] == volume]


def by_policy(snaps, policy):
    return [s["id"] for s in snaps if s["tags"].get("blocksnap:policy") == policy]


def policy_yaml(name, times="03:00", every="24h", retain="{count: 2}", tags="{kind: nightly}",
                target="{backup: nightly}", enabled="true", schedule="nightly", extra=""):
    return f"""name: {name}
description: test policy {name}
enabled: {enabled}
target:
  tags: {target}
schedules:
  - name: {schedule}
    create: {{every: {every}, times: ["{times}"], timezone: UTC}}
    retain: {retain}
    tags: {tags}
{extra}"""
