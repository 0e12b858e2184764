"""The scheduler's log entries carry POLICY=, VOLUME= and SNAPSHOT= on the journal, so
`journalctl POLICY=db-nightly` finds every run and deletion of a policy. The journal is the
fake one of test_systemd_journal.py (native protocol on a datagram socket)."""
import os
import signal
import subprocess

from harness import Daemon, NotifyListener
from test_policy_common import create_volume, policy_yaml, set_time, write_policies
from test_systemd_journal import FakeJournal

TIMEOUT = 60


def test_runs_and_deletions_have_journal_fields(tmp_path):
    journal = FakeJournal(tmp_path / "journal.sock")
    pdir = write_policies(tmp_path / "policies", {"p.yaml": policy_yaml("p", retain="{count: 1}")})
    d = Daemon(tmp_path / "d", extra_args=["--policy-dir", str(pdir), "--test-clock",
                                           "2026-01-05T02:59:00Z"])
    d.tmp.mkdir()
    log = open(d.log_path, "ab")
    st = os.fstat(log.fileno())
    notify = NotifyListener(d.tmp / "notify.sock")
    # Daemon.start() hides JOURNAL_STREAM; here stderr must be "the journal's stream".
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, BLOCKSNAP_JOURNAL_SOCKET=journal.path,
               JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    proc = subprocess.Popen(d.args(), stdout=log, stderr=log, env=env, stdin=subprocess.DEVNULL)
    log.close()
    try:
        assert notify.wait_for("READY=1", proc), d.log_text()
        create_volume(d, "db", backup="nightly")
        first = set_time(d, "2026-01-05T03:00:00Z")[0]["Snapshot"]
        second = set_time(d, "2026-01-06T03:00:00Z")[0]["Snapshot"]

        created = journal.wait_for(f"create db policy=p schedules=nightly snapshot={second}")
        assert len(created) == 1
        e = created[0]
        assert (e["POLICY"], e["VOLUME"], e["SNAPSHOT"], e["PRIORITY"]) == ("p", "db", second,
                                                                             "6")
        deleted = journal.wait_for(f"delete {first} of db policy=p: beyond count 1")
        assert len(deleted) == 1
        assert (deleted[0]["POLICY"], deleted[0]["VOLUME"], deleted[0]["SNAPSHOT"]) == (
            "p", "db", first)
        summary = journal.wait_for("policy p ran at 2026-01-06T03:00:00Z: ok: 1 created, 1 "
                                   "deleted")
        assert len(summary) == 1 and summary[0]["POLICY"] == "p"
        assert "VOLUME" not in summary[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
        notify.close()
        journal.close()
    assert code == 0
