"""Reloading and restarting the scheduler: an edited file is picked up (policy reload and
SIGHUP) without losing state, a broken file beside a good one leaves the good one running,
and neither a restart nor a kill -9 makes a second snapshot for a slot."""
import json
import os
import signal

from test_policy_common import (by_policy, create_volume, policy_daemon, policy_yaml,
                                set_time, snapshots)

BROKEN = """name: broken
target:
  tags: {backup: nightly}
schedules:
  - name: s
    create: {every: 24h}
    retain: {count: 2}
    colour: red
"""
BROKEN_ERROR = ("broken.yaml:8:5: unknown key 'colour' in schedule "
                "(allowed: name, create, retain, tags, copy_tags)")


def test_reload_picks_up_an_edited_file(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p")})
    create_volume(d, "db", backup="nightly")
    assert len(set_time(d, "2026-01-05T03:00:00Z")) == 1

    (d.policy_dir / "p.yaml").write_text(policy_yaml("p", times="05:00", tags="{kind: edited}"))
    out = d.ctl_json("policy", "reload")
    assert out == {"policies": 1, "errors": []}
    # The old slot time no longer fires; the new one does, with the new tags.
    assert set_time(d, "2026-01-05T04:00:00Z") == []
    actions = set_time(d, "2026-01-05T05:00:00Z")
    assert [a["Kind"] for a in actions] == ["create"]
    assert actions[0]["Tags"]["kind"] == "edited"
    assert set_time(d, "2026-01-06T03:00:00Z") == []
    assert len(by_policy(snapshots(d), "p")) == 2


def test_reload_keeps_state_no_duplicate_slot(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p")})
    create_volume(d, "db", backup="nightly")
    assert len(set_time(d, "2026-01-05T03:00:00Z")) == 1
    (d.policy_dir / "p.yaml").write_text(policy_yaml("p", tags="{kind: edited}"))
    d.ctl("policy", "reload")
    # Same instant again after the reload: the slot was handled already.
    assert set_time(d, "2026-01-05T03:00:00Z") == []
    assert set_time(d, "2026-01-05T03:30:00Z") == []
    assert len(snapshots(d)) == 1


def test_sighup_reloads(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p")})
    create_volume(d, "db", backup="nightly")
    (d.policy_dir / "q.yaml").write_text(policy_yaml("q", times="04:00"))
    d.notify.messages.clear()
    d.proc.send_signal(signal.SIGHUP)
    assert d.notify.wait_for("READY=1", d.proc)  # sd_notify: the reload is finished
    assert [p["name"] for p in d.ctl_json("policy", "list")] == ["p", "q"]
    assert [a["Policy"] for a in set_time(d, "2026-01-05T03:00:00Z")] == ["p"]
    assert [a["Policy"] for a in set_time(d, "2026-01-05T04:00:00Z")] == ["q"]


def test_broken_file_beside_a_good_one(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path,
                      {"good.yaml": policy_yaml("good"), "broken.yaml": BROKEN})
    create_volume(d, "db", backup="nightly")
    assert f"{d.policy_dir}/{BROKEN_ERROR}" in d.log_text()
    assert [p["name"] for p in d.ctl_json("policy", "list")] == ["good"]
    assert d.ctl("policy", "list").stderr == f"skipped: {d.policy_dir}/{BROKEN_ERROR}\n"
    actions = set_time(d, "2026-01-05T03:00:00Z")
    assert [(a["Kind"], a["Policy"]) for a in actions] == [("create", "good")]

    out = d.ctl_json("policy", "reload")
    assert out == {"policies": 1, "errors": [f"{d.policy_dir}/{BROKEN_ERROR}"]}
    text = d.ctl("policy", "reload").stdout
    assert text == f"reloaded: 1 policies\nskipped: {d.policy_dir}/{BROKEN_ERROR}\n"
    # Still running after the reload.
    assert [a["Policy"] for a in set_time(d, "2026-01-06T03:00:00Z")] == ["good"]


# A D-Bus string must be valid UTF-8: sd-bus refuses anything else, and a reply that cannot be
# built must still be answered. File names and keys with Latin-1 bytes reach the client as
# \xNN escapes. `timeout` bounds what used to be a hang (reload lifts the call timeout).
LATIN1_FILE = b"br\xe9.yaml"
LATIN1_ERROR = ("br\\xe9.yaml:8:5: unknown key 'col\\xe9ur' in schedule "
                "(allowed: name, create, retain, tags, copy_tags)")


def test_reload_answers_with_non_utf8_file_names_and_keys(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"good.yaml": policy_yaml("good")})
    broken = BROKEN.replace("colour", "col\xe9ur").encode("latin-1")
    (d.policy_dir / os.fsdecode(LATIN1_FILE)).write_bytes(broken)
    # A good policy in a file whose name is not UTF-8: its File is listed escaped.
    (d.policy_dir / os.fsdecode(b"caf\xe9.yaml")).write_text(policy_yaml("cafe"))
    error = f"{d.policy_dir}/{LATIN1_ERROR}"

    p = d.ctl("policy", "reload", timeout=30)
    assert p.stdout == f"reloaded: 2 policies\nskipped: {error}\n"
    p = d.ctl("--json", "policy", "reload", timeout=30)
    assert json.loads(p.stdout) == {"policies": 2, "errors": [error]}
    p = d.ctl("policy", "list", timeout=30)
    assert p.stderr == f"skipped: {error}\n"
    p = d.ctl("--json", "policy", "show", "cafe", timeout=30)
    assert json.loads(p.stdout)["file"] == f"{d.policy_dir}/caf\\xe9.yaml"
    assert d.proc.poll() is None


def test_reload_error_with_a_non_utf8_config_key_is_answered(daemon_factory, tmp_path):
    # The config file's error comes back as the D-Bus error's message, also an 's'.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("log_level: debug\n")
    pdir = tmp_path / "policies"
    pdir.mkdir()
    d = daemon_factory(extra_args=["--config", str(cfg), "--policy-dir", str(pdir)]).start()
    cfg.write_bytes(b"log_level: debug\nbog\xfas: 1\n")
    p = d.ctl("policy", "reload", check=False, timeout=30)
    assert (p.returncode, p.stderr) == (
        1, f"blocksnapctl: {cfg}:2:1: unknown setting 'bog\\xfas'\n")
    assert d.ctl("volume", "list", timeout=30).returncode == 0


def _restart_at(d, when, kill=False):
    d.extra_args[d.extra_args.index("--test-clock") + 1] = when
    if kill:
        d.kill9()
        d.start()
    else:
        d.restart()
    # SetTime queues behind the start-up tick (one worker): after its reply, that tick is done.
    return set_time(d, when)


def test_restart_does_not_duplicate(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p", retain="{count: 9}")})
    create_volume(d, "db", backup="nightly")
    assert len(set_time(d, "2026-01-05T03:00:00Z")) == 1
    assert _restart_at(d, "2026-01-05T03:00:00Z") == []
    assert _restart_at(d, "2026-01-05T03:00:30Z", kill=True) == []
    assert len(snapshots(d)) == 1


def test_catch_up_after_downtime_runs_once(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p", retain="{count: 9}")})
    create_volume(d, "db", backup="nightly")
    assert len(set_time(d, "2026-01-05T03:00:00Z")) == 1
    d.stop()
    # Down for three slots; the start-up tick catches up once, for the latest slot.
    d.extra_args[d.extra_args.index("--test-clock") + 1] = "2026-01-08T12:00:00Z"
    d.start()
    assert set_time(d, "2026-01-08T12:00:00Z") == []
    snaps = snapshots(d)
    assert len(snaps) == 2
    assert snaps[1]["tags"]["blocksnap:test-created"] == "2026-01-08T12:00:00Z"
    assert "slot=2026-01-08T03:00:00Z" in d.log_text()


def test_deleting_a_policy_file_leaves_its_snapshots(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p", retain="{count: 1}")})
    create_volume(d, "db", backup="nightly")
    assert len(set_time(d, "2026-01-05T03:00:00Z")) == 1
    (d.policy_dir / "p.yaml").unlink()
    assert d.ctl_json("policy", "reload") == {"policies": 0, "errors": []}
    for day in range(6, 9):
        assert set_time(d, f"2026-01-{day:02d}T03:00:00Z") == []
    assert len(by_policy(snapshots(d), "p")) == 1


def test_reload_of_an_unlistable_dir_keeps_the_policies(daemon_factory, tmp_path):
    # A directory that exists but cannot be listed says nothing about its policies (root sees
    # through permissions, so a symlink loop stands in for EACCES here).
    d = policy_daemon(daemon_factory, tmp_path, {"p.yaml": policy_yaml("p")})
    create_volume(d, "db", backup="nightly")
    real = tmp_path / "policies.real"
    loop = tmp_path / "policies.loop"
    d.policy_dir.rename(real)
    d.policy_dir.symlink_to(loop)
    loop.symlink_to(d.policy_dir)
    out = d.ctl_json("policy", "reload")
    assert out["policies"] == 1
    assert len(out["errors"]) == 1, out
    assert out["errors"][0].startswith(f"{d.policy_dir}:1:1: cannot reach the policy directory")
    assert out["errors"][0].endswith("; the 1 policies loaded before keep running")
    assert [p["name"] for p in d.ctl_json("policy", "list")] == ["p"]
    assert [a["Policy"] for a in set_time(d, "2026-01-05T03:00:00Z")] == ["p"]

    # Listable again: the reload reads it as usual, here with the file gone.
    d.policy_dir.unlink()
    real.rename(d.policy_dir)
    (d.policy_dir / "p.yaml").unlink()
    assert d.ctl_json("policy", "reload") == {"policies": 0, "errors": []}


def test_clock_stepped_back_keeps_the_snapshot_just_taken(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path,
                      {"p.yaml": policy_yaml("p", retain="{count: 1}")})
    create_volume(d, "db", backup="nightly")
    assert [a["Kind"] for a in set_time(d, "2026-01-05T03:00:00Z")] == ["create"]
    first = by_policy(snapshots(d), "p")
    # The wall clock steps back four days; a run now takes a snapshot that looks older than
    # the first one by its creation time, but it is the newest: count 1 deletes the first.
    assert set_time(d, "2026-01-01T12:00:00Z") == []
    run = d.ctl_json("policy", "run", "p")
    assert [a["kind"] for a in run] == ["create", "delete"]
    assert run[1]["snapshot"] == first[0]
    left = [s for s in snapshots(d) if s["tags"].get("blocksnap:policy") == "p"]
    assert len(left) == 1 and left[0]["id"] != first[0]
    assert left[0]["tags"]["blocksnap:test-created"] == "2026-01-01T12:00:00Z"
