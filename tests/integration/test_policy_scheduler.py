"""The live scheduler against a real blocksnapd on a test clock: selection by tag, the tags
of its snapshots, retention that touches only the policy's own snapshots, disabled policies.
Time moves only by Testing.SetTime, whose reply comes when the tick's work is done."""
from test_policy_common import (by_policy, create_volume, manual_snapshot, policy_daemon,
                                policy_yaml, set_time, snapshots)

NIGHTLY = policy_yaml("db-nightly", tags='{kind: nightly, label: "{policy}/{volume}"}',
                      extra="    copy_tags: true\n")


def test_selects_volumes_by_tag_and_tags_snapshots(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"db.yaml": NIGHTLY})
    create_volume(d, "db", backup="nightly", env="prod")
    create_volume(d, "web", env="prod")

    assert set_time(d, "2026-01-05T02:59:59Z") == []
    actions = set_time(d, "2026-01-05T03:00:00Z")
    assert [(a["Kind"], a["Volume"], a["Policy"], a["Error"]) for a in actions] == [
        ("create", "db", "db-nightly", "")]

    snaps = snapshots(d)
    assert [s["volume"] for s in snaps] == ["db"]
    snap = snaps[0]
    assert snap["id"] == actions[0]["Snapshot"]
    assert snap["state"] == "completed"
    tags = snap["tags"]
    assert tags["blocksnap:policy"] == "db-nightly"
    assert tags["blocksnap:schedule"] == "nightly"
    assert tags["blocksnap:slot"] == "2026-01-05T03:00:00Z"
    assert tags["kind"] == "nightly"
    assert tags["label"] == "db-nightly/db"
    assert tags["backup"] == "nightly" and tags["env"] == "prod"  # copy_tags
    assert snapshots(d, "web") == []

    listed = d.ctl_json("policy", "list")
    assert [(p["name"], p["enabled"], p["volumes"]) for p in listed] == [
        ("db-nightly", True, ["db"])]
    assert listed[0]["last_run"] == "2026-01-05T03:00:00Z"
    assert listed[0]["last_result"] == "ok: 1 created, 0 deleted"
    assert listed[0]["next_run"] == "2026-01-06T03:00:00Z"
    # The daemon logged the run with the rule's names.
    assert ("create db policy=db-nightly schedules=nightly snapshot=" + snap["id"]
            in d.log_text())


def test_retention_deletes_only_the_policys_own(daemon_factory, tmp_path):
    other = policy_yaml("other", times="04:00", retain="{count: 10}", tags="{kind: other}",
                        schedule="early")
    d = policy_daemon(daemon_factory, tmp_path, {"a.yaml": NIGHTLY, "b.yaml": other})
    create_volume(d, "db", backup="nightly")
    manual = manual_snapshot(d, "db", kind="manual")

    created, deleted = [], []
    for day in range(5, 10):
        for hour in ("03", "04"):
            for a in set_time(d, f"2026-01-{day:02d}T{hour}:00:00Z"):
                assert a["Error"] == ""
                if a["Kind"] == "create":
                    created.append((a["Policy"], a["Snapshot"]))
                else:
                    deleted.append((a["Policy"], a["Snapshot"], a["Reason"]))

    mine = [sid for pol, sid in created if pol == "db-nightly"]
    theirs = [sid for pol, sid in created if pol == "other"]
    assert len(mine) == 5 and len(theirs) == 5
    # Keep 2: each new snapshot after the second retires the oldest one, by count.
    assert deleted == [("db-nightly", mine[i], "beyond count 2") for i in range(3)]

    snaps = snapshots(d)
    ids = [s["id"] for s in snaps]
    assert manual in ids
    assert by_policy(snaps, "db-nightly") == mine[3:]
    assert by_policy(snaps, "other") == theirs
    assert f"delete {mine[0]} of db policy=db-nightly: beyond count 2" in d.log_text()


def test_age_retention_never_deletes_the_newest(daemon_factory, tmp_path):
    aged = policy_yaml("aged", retain="{age: 2d}")
    d = policy_daemon(daemon_factory, tmp_path, {"aged.yaml": aged})
    create_volume(d, "db", backup="nightly")
    first = set_time(d, "2026-01-05T03:00:00Z")[0]["Snapshot"]
    second = set_time(d, "2026-01-06T03:00:00Z")[0]["Snapshot"]
    assert [a["Kind"] for a in set_time(d, "2026-01-07T03:00:00Z")] == ["create"]
    # Day 8: the first is 3 days old, older than 2d, and goes; the second is exactly 2d old.
    actions = set_time(d, "2026-01-08T03:00:00Z")
    assert [(a["Kind"], a["Snapshot"]) for a in actions][1:] == [("delete", first)]
    assert "age 2d exceeded" in actions[1]["Reason"]
    assert second in [s["id"] for s in snapshots(d)]


def test_disabled_policy_does_nothing(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path,
                      {"off.yaml": policy_yaml("off", enabled="false")})
    create_volume(d, "db", backup="nightly")
    for day in range(5, 9):
        assert set_time(d, f"2026-01-{day:02d}T03:00:00Z") == []
    assert snapshots(d) == []
    listed = d.ctl_json("policy", "list")
    assert [(p["name"], p["enabled"], p["next_run"]) for p in listed] == [("off", False, "")]
    p = d.ctl("policy", "run", "off", check=False)
    assert p.returncode == 1
    assert p.stderr == "blocksnapctl: policy 'off' is disabled\n"
    assert snapshots(d) == []


def test_forward_clock_jump_does_not_stop_the_schedule(daemon_factory, tmp_path):
    # The clock reads 2031 at boot: the catch-up round runs and saves a 2031 slot. Once the
    # clock is right again the schedule must resume at its next slot, not wait for 2031.
    d = policy_daemon(daemon_factory, tmp_path, {"db.yaml": NIGHTLY})
    create_volume(d, "db", backup="nightly")
    wrong = set_time(d, "2031-01-05T04:00:00Z")
    assert [(a["Kind"], a["Slot"]) for a in wrong] == [("create", "2031-01-05T03:00:00Z")]

    assert set_time(d, "2026-01-06T02:00:00Z") == []
    assert ("saved slot 2031-01-05T03:00:00Z is later than now (2026-01-06T02:00:00Z): the "
            "clock was ahead or stepped back; resuming from 2026-01-05T03:00:00Z, next slot "
            "2026-01-06T03:00:00Z") in d.log_text()
    listed = d.ctl_json("policy", "list")
    assert listed[0]["next_run"] == "2026-01-06T03:00:00Z"

    resumed = set_time(d, "2026-01-06T03:00:00Z")
    assert [(a["Kind"], a["Slot"], a["Error"]) for a in resumed] == [
        ("create", "2026-01-06T03:00:00Z", "")]
