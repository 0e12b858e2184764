"""blocksnapctl policy validate (no daemon), list, show, run, plan and reload, as text and
--json, against a daemon on a test clock."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

from harness import CTL, Daemon, stop_then_remove
from test_policy_common import (START, busctl, by_policy, create_volume, policy_daemon,
                                policy_yaml, set_time, snapshots, write_policies)

GOOD = policy_yaml("db-nightly")
ISSUE_EXAMPLE = """name: db-nightly
description: Nightly snapshots of database volumes
enabled: true
target:
  tags: {backup: nightly}
schedules:
  - name: nightly
    create: {every: 24h, times: ["03:00"], timezone: UTC}
    retain: {age: 5d, count: 10}
    tags: {kind: nightly}
    copy_tags: true
"""
BAD_COUNT = """name: bad
target:
  tags: {backup: nightly}
schedules:
  - name: s
    create: {every: 24h}
    retain: {count: 0}
"""
BAD_ZONE = """name: zone
target:
  tags: {a: b}
schedules:
  - name: s
    create: {every: 24h, timezone: Mars/Base}
    retain: {count: 2}
"""


def validate(*args, control="/nonexistent/control.sock"):
    # A control path that does not exist: validate must not need a daemon.
    return subprocess.run([str(CTL), "--control", control, "policy", "validate", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_validate_good_files_without_a_daemon(tmp_path):
    pdir = write_policies(tmp_path, {"a.yaml": ISSUE_EXAMPLE,
                                     "b.yaml": policy_yaml("other", target="{x: y}")})
    p = validate(pdir / "a.yaml", pdir / "b.yaml")
    assert (p.returncode, p.stdout, p.stderr) == (0, "2 policies OK\n", "")
    p = validate("--policy-dir", pdir)
    assert (p.returncode, p.stdout) == (0, "2 policies OK\n")


def test_validate_reports_file_line_col(tmp_path):
    pdir = write_policies(tmp_path, {"bad.yaml": BAD_COUNT, "zone.yaml": BAD_ZONE,
                                     "good.yaml": GOOD})
    p = validate("--policy-dir", pdir)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert len(lines) == 2
    assert lines == [f"{pdir}/bad.yaml:7:21: 'count' must be between 1 and 1000, got 0",
                     f"{pdir}/zone.yaml:6:36: unknown time zone 'Mars/Base'"]
    assert p.stderr == "blocksnapctl: 2 error(s) in policy files\n"

    p = subprocess.run([str(CTL), "--json", "policy", "validate", str(pdir / "bad.yaml"),
                        str(pdir / "good.yaml")], capture_output=True, text=True)
    doc = json.loads(p.stdout)
    assert p.returncode == 1
    assert doc["ok"] is False and doc["policies"] == ["db-nightly"]
    assert doc["errors"] == [lines[0]]


def test_validate_duplicate_names_and_missing_file(tmp_path):
    pdir = write_policies(tmp_path, {"a.yaml": GOOD, "b.yaml": GOOD})
    p = validate(pdir / "a.yaml", pdir / "b.yaml")
    assert p.returncode == 1
    assert p.stdout.startswith(f"{pdir}/b.yaml:1:7: duplicate policy name 'db-nightly'")
    p = validate(tmp_path / "missing.yaml")
    assert p.returncode == 1
    assert p.stdout.startswith(f"{tmp_path}/missing.yaml:1:1: cannot read")


def test_list_show_run_plan_reload(daemon_factory, tmp_path):
    d = policy_daemon(daemon_factory, tmp_path, {"db.yaml": ISSUE_EXAMPLE})
    create_volume(d, "db", backup="nightly")
    create_volume(d, "web")

    out = d.ctl("policy", "list").stdout.splitlines()
    assert out[0].split() == ["NAME", "ENABLED", "VOLUMES", "LAST", "RUN", "RESULT", "NEXT",
                              "RUN"]
    assert out[1].split() == ["db-nightly", "yes", "db", "-", "-", "2026-01-05T03:00:00Z"]

    show = d.ctl("policy", "show", "db-nightly").stdout
    assert "policy db-nightly" in show and "next run: 2026-01-05T03:00:00Z" in show
    assert "Volumes:  db" in show
    doc = d.ctl_json("policy", "show", "db-nightly")
    assert doc["name"] == "db-nightly" and doc["targets"] == {"backup": "nightly"}
    assert doc["schedules"] == ["nightly"] and doc["volumes"] == ["db"]
    p = d.ctl("policy", "show", "nope", check=False)
    assert (p.returncode, p.stderr) == (1, "blocksnapctl: no policy 'nope'\n")

    # policy run: now, as the scheduler would, without consuming the slot.
    run = d.ctl_json("policy", "run", "db-nightly")
    assert [(a["kind"], a["volume"]) for a in run] == [("create", "db")]
    assert run[0]["tags"]["blocksnap:schedule"] == "nightly"
    p = d.ctl("policy", "run", "db-nightly", "--schedule", "hourly", check=False)
    assert (p.returncode, p.stderr) == (
        1, "blocksnapctl: policy 'db-nightly' has no schedule 'hourly'\n")
    assert [a["Kind"] for a in set_time(d, "2026-01-05T03:00:00Z")] == ["create"]
    assert len(by_policy(snapshots(d), "db-nightly")) == 2

    plan = d.ctl("policy", "plan", "--days", "2").stdout
    assert plan == ("2026-01-06T03:00:00Z create db policy=db-nightly schedules=nightly "
                    "snapshot=plan-1\n"
                    "2026-01-07T03:00:00Z create db policy=db-nightly schedules=nightly "
                    "snapshot=plan-2\n")
    p = d.ctl("policy", "plan", "--days", "0", check=False)
    assert p.returncode == 2

    assert d.ctl("policy", "reload").stdout == "reloaded: 1 policies\n"
    assert d.ctl_json("policy", "reload") == {"policies": 1, "errors": []}


def test_policy_run_with_a_failed_action_exits_1_as_text_and_json(daemon_factory, tmp_path):
    # Under --debug-no-tracking (a benchmark switch) the engine refuses every snapshot, so
    # the round's create fails. Both forms print what happened, then exit 1.
    pdir = write_policies(tmp_path / "policies", {"db.yaml": GOOD})
    d = daemon_factory(extra_args=["--policy-dir", str(pdir), "--test-clock", START,
                                   "--debug-no-tracking"]).start()
    create_volume(d, "db", backup="nightly")
    refused = "dirty tracking is switched off (--debug-no-tracking): snapshots are refused"

    p = d.ctl("--json", "policy", "run", "db-nightly", check=False)
    assert (p.returncode, p.stderr) == (1, "blocksnapctl: some actions failed\n")
    run = json.loads(p.stdout)
    assert [(a["kind"], a["volume"], a["error"]) for a in run] == [("create", "db", refused)]

    p = d.ctl("policy", "run", "db-nightly", check=False)
    assert (p.returncode, p.stderr) == (1, "blocksnapctl: some actions failed\n")
    assert p.stdout.endswith(f" FAILED: {refused}\n"), p.stdout
    assert snapshots(d) == []


def test_testing_interface_absent_without_test_clock(daemon_factory, tmp_path):
    pdir = write_policies(tmp_path / "p", {"db.yaml": GOOD})
    d = daemon_factory(extra_args=["--policy-dir", str(pdir)]).start()
    p = subprocess.run(["busctl", f"--address=unix:path={d.control_path}", "introspect",
                        "org.blocksnap1", "/org/blocksnap1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "org.blocksnap1.Manager" in p.stdout and ".ListPolicies" in p.stdout
    assert "org.blocksnap1.Testing" not in p.stdout
    assert [x["name"] for x in d.ctl_json("policy", "list")] == ["db-nightly"]


def test_other_users_may_read_policies_but_not_run_or_reload(tmp_path):
    # The control socket and blocksnapctl must be reachable by "nobody": pytest's tmp dirs
    # are 0700 and the build tree may sit under /root.
    base = pathlib.Path(tempfile.mkdtemp(prefix="blocksnap-policy-perm-"))
    os.chmod(base, 0o755)
    ctl = shutil.copy2(CTL, base)
    pdir = write_policies(base / "policies", {"db.yaml": GOOD})
    d = Daemon(base / "d", extra_args=["--policy-dir", str(pdir), "--test-clock",
                                       "2026-01-05T02:59:00Z"])
    d.tmp.mkdir()
    os.chmod(d.tmp, 0o755)
    try:
        d.start()
        create_volume(d, "db", backup="nightly")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctl,
                     "--control", str(d.control_path)]
        p = subprocess.run([*as_nobody, "--json", "policy", "list"], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stderr
        assert [x["name"] for x in json.loads(p.stdout)] == ["db-nightly"]
        for args in (["policy", "run", "db-nightly"], ["policy", "reload"]):
            p = subprocess.run([*as_nobody, *args], capture_output=True, text=True)
            assert p.returncode == 1
            assert "permission denied" in p.stderr, p.stderr
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "busctl", f"--address=unix:path={d.control_path}", "call",
                            "org.blocksnap1", "/org/blocksnap1", "org.blocksnap1.Testing",
                            "SetTime", "s", "2026-01-05T03:00:00Z"],
                           capture_output=True, text=True)
        assert p.returncode != 0 and "ermission denied" in p.stderr, p.stderr
        assert snapshots(d) == []
    finally:
        stop_then_remove(d, base)


def test_validate_defaults_to_the_default_policy_dir():
    # As a user, the default policy dir is $XDG_CONFIG_HOME/blocksnap/policies.d; run as
    # "nobody" so the test never reads the host's /etc/blocksnap.
    base = pathlib.Path(tempfile.mkdtemp(prefix="blocksnap-policy-default-"))
    try:
        os.chmod(base, 0o755)
        ctl = shutil.copy2(CTL, base)
        pdir = write_policies(base / "config" / "blocksnap" / "policies.d",
                              {"a.yaml": GOOD, "b.yaml": BAD_COUNT, "notes.txt": "ignored"})
        env = dict(os.environ, XDG_CONFIG_HOME=str(base / "config"), HOME=str(base))
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctl]
        p = subprocess.run([*nobody, "policy", "validate"], capture_output=True, text=True,
                           env=env)
        assert p.returncode == 1, p.stderr
        assert p.stdout == (f"{pdir}/b.yaml:7:21: 'count' must be between 1 and 1000, "
                            "got 0\n")
        (pdir / "b.yaml").unlink()
        p = subprocess.run([*nobody, "policy", "validate"], capture_output=True, text=True,
                           env=env)
        assert (p.returncode, p.stdout) == (0, "1 policies OK\n"), p.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_default_control_socket_is_the_daemons_without_xdg_runtime_dir():
    # As a user without $XDG_RUNTIME_DIR, blocksnapd serves /tmp/blocksnap-UID/control.sock
    # (config.cc); blocksnapctl must look there too, not under /run/user/UID.
    base = pathlib.Path(tempfile.mkdtemp(prefix="blocksnap-ctl-default-"))
    try:
        os.chmod(base, 0o755)
        ctl = shutil.copy2(CTL, base)
        env = {k: v for k, v in os.environ.items()
               if k not in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "BLOCKSNAP_CONTROL")}
        env["HOME"] = str(base)  # no config file there
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctl,
                            "volume", "list"], capture_output=True, text=True, env=env)
        assert p.returncode == 1, p.stdout
        assert p.stderr.startswith(
            "blocksnapctl: cannot connect to blocksnapd at /tmp/blocksnap-65534/control.sock: "
        ), p.stderr
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctl,
                            "--help"], capture_output=True, text=True, env=env)
        assert "/tmp/blocksnap-65534/control.sock" in p.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


TWO_SCHEDULES = """name: db
target:
  tags: {backup: nightly}
schedules:
  - name: daily
    create: {every: 24h, times: ["03:00"]}
    retain: {count: 7}
  - name: monthly
    create: {cron: "30 2 1 * *"}
    retain: {count: 3}
"""


def test_policy_run_of_several_schedules_needs_one_named(daemon_factory, tmp_path):
    # A manual run of all schedules merged would count in every schedule's retention (three
    # runs deleted every monthly snapshot of `monthly {count 3}`): it is a usage error.
    d = policy_daemon(daemon_factory, tmp_path, {"db.yaml": TWO_SCHEDULES})
    create_volume(d, "db", backup="nightly")
    message = "policy 'db' has 2 schedules; name the one to run (daily, monthly)"
    p = d.ctl("policy", "run", "db", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"blocksnapctl: {message}\n")
    p = busctl(d, "Manager", "RunPolicy", "ss", "db", "", check=False)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert snapshots(d) == []

    run = d.ctl_json("policy", "run", "db", "--schedule", "monthly")
    assert [(a["kind"], a["tags"]["blocksnap:schedule"]) for a in run] == [("create", "monthly")]
    p = d.ctl("policy", "run", "db", "--schedule", "weekly", check=False)
    assert (p.returncode, p.stderr) == (1, "blocksnapctl: policy 'db' has no schedule 'weekly'\n")
