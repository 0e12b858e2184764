"""`blocksnapctl policy plan` predicts exactly what the scheduler then does: for a fixed set
of volumes and snapshots and a fixed start on the test clock, the plan's creations and
deletions per instant equal those the daemon makes when its clock is stepped through the
planned instants. The plan itself acts on nothing."""
from test_policy_common import (create_volume, manual_snapshot, policy_daemon, policy_yaml,
                                set_time, snapshots)

MULTI = """name: multi
description: two schedules that coincide at midnight
target:
  tags: {backup: nightly}
schedules:
  - name: half-day
    create: {every: 12h}
    retain: {count: 2}
  - name: daily
    create: {every: 24h, times: ["00:00"]}
    retain: {count: 3}
    tags: {kind: daily}
"""
CRON = """name: weekdays
target:
  tags: {tier: gold}
schedules:
  - name: early
    create: {cron: "30 1 * * mon-fri", timezone: Europe/Berlin}
    retain: {age: 2d, count: 2}
"""
POLICIES = {
    "six.yaml": policy_yaml("six", every="6h", times="00:00", retain="{count: 3}",
                            schedule="six"),
    "gold.yaml": policy_yaml("gold", retain="{age: 2d}", target="{tier: gold}",
                             schedule="daily"),
    "multi.yaml": MULTI,
    "cron.yaml": CRON,
    "off.yaml": policy_yaml("off", enabled="false", every="1h", times="00:00"),
}


def _key(a, ids):
    snap = ids.get(a["snapshot"], a["snapshot"])
    return (a["at"], a["kind"], a["policy"], tuple(a["schedules"]), a["volume"], snap,
            a["slot"], a["reason"], a["error"])


def test_plan_equals_what_the_scheduler_does(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, POLICIES)
    create_volume(d, "db", backup="nightly", tier="gold")
    create_volume(d, "web", tier="gold")
    create_volume(d, "scratch")
    manual_snapshot(d, "db", kind="manual")
    # A fixed history: a few rounds before the plan starts.
    for t in ("2026-01-05T03:00:00Z", "2026-01-05T06:00:00Z", "2026-01-05T12:00:00Z"):
        assert all(a["Error"] == "" for a in set_time(d, t))

    before = snapshots(d)
    state_before = d.ctl_json("policy", "list")
    plan = d.ctl_json("policy", "plan", "--days", "4")
    text = d.ctl("policy", "plan", "--days", "4").stdout
    assert text == "".join(a["line"] + "\n" for a in plan)
    # Planning acts on nothing.
    assert snapshots(d) == before
    assert [p["last_slots"] for p in d.ctl_json("policy", "list")] == [
        p["last_slots"] for p in state_before]

    assert len(plan) > 20, plan
    kinds = {a["kind"] for a in plan}
    assert kinds == {"create", "delete"}
    assert {a["policy"] for a in plan} == {"six", "gold", "multi", "weekdays"}
    assert not any(a["volume"] == "scratch" for a in plan)
    # Coincident schedules make one snapshot carrying both.
    assert any(a["schedules"] == ["half-day", "daily"] for a in plan if a["kind"] == "create")
    assert any("age 2d exceeded" in a["reason"] for a in plan)

    actual = []
    for instant in sorted({a["at"] for a in plan}):
        for a in set_time(d, instant):
            actual.append({k.lower() if k != "VolumeId" else "volume_id": v
                           for k, v in a.items()})
    # plan-N are the plan's names for the snapshots it would create, in creation order.
    planned_creates = [a["snapshot"] for a in plan if a["kind"] == "create"]
    actual_creates = [a["snapshot"] for a in actual if a["kind"] == "create"]
    assert len(planned_creates) == len(actual_creates)
    ids = dict(zip(planned_creates, actual_creates))
    assert [_key(a, ids) for a in plan] == [_key(a, {}) for a in actual]

    # And the world agrees: what is left is what the plan said would be left.
    deleted = {ids.get(a["snapshot"], a["snapshot"]) for a in plan if a["kind"] == "delete"}
    expected = ({s["id"] for s in before} | set(actual_creates)) - deleted
    assert {s["id"] for s in snapshots(d)} == expected
