"""The daemon itself: readiness, clean shutdown, bad config, reload."""
import os
import signal
import subprocess

from conftest import DAEMON


def test_ready_then_clean_stop_removes_sockets(daemon):
    assert daemon.control_path.exists()
    code = daemon.stop()
    assert code == 0
    assert not daemon.control_path.exists(), "control socket left behind"
    assert "blocksnapd stopped" in daemon.log_text()


def test_sigint_stops_too(daemon):
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(timeout=60) == 0
    daemon._close()


def test_bad_config_file_reports_file_line_col(tmp_path):
    cfg = tmp_path / "blocksnapd.yaml"
    cfg.write_text("data_dir: /tmp/x\nlisten:\n  - 127.0.0.1:1\nio_threads: lots\n")
    p = subprocess.run([str(DAEMON), "--config", str(cfg), "--bus", "none"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert f"{cfg}:4:13: 'io_threads' must be a whole number from 0 to 256" in p.stderr


def test_missing_config_file_is_an_error(tmp_path):
    p = subprocess.run([str(DAEMON), "--config", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "nope.yaml" in p.stderr


def test_declared_volume_created_once_and_kept(daemon_factory, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("volumes:\n  - name: demo\n    size: 64M\n")
    d = daemon_factory(extra_args=["--config", str(cfg)]).start()
    images = list((d.data_dir / "volumes").glob("*.img"))
    assert len(images) == 1 and images[0].stat().st_size == 64 << 20
    d.restart()
    assert list((d.data_dir / "volumes").glob("*.img")) == images


def test_sighup_reload_keeps_serving_and_applies_log_level(daemon_factory, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("log_level: info\n")
    d = daemon_factory(extra_args=["--config", str(cfg)])
    d.start()
    cfg.write_text("log_level: warn\nbogus: 1\n")  # a broken edit: reload must refuse it
    os.kill(d.pid, signal.SIGHUP)
    assert d.notify.wait_for("RELOADING=1", d.proc)
    d.notify.messages.clear()
    assert d.notify.wait_for("READY=1", d.proc)
    assert f"{cfg}:2:1: unknown setting 'bogus'" in d.log_text()
    assert d.proc.poll() is None


def test_runtime_dir_of_another_user_is_refused(tmp_path):
    # Without XDG_RUNTIME_DIR a user's runtime dir is /tmp/blocksnap-<uid>; one that another
    # user made first could have its sockets replaced, so it is refused.
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, 65534, 65534)
    p = subprocess.run([str(DAEMON), "--data-dir", str(tmp_path / "data"), "--runtime-dir",
                        str(run), "--bus", "none", "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert (f"{run} belongs to uid 65534, not to this daemon's uid 0; refusing to use it"
            in p.stderr), p.stderr
    assert not (run / "control.sock").exists()
