import json
import os
import shutil
import subprocess
import sys

from streamrec.infra.devstack.daemon import Daemon


def _daemon(tmp_path):
    return Daemon("sleeper", tmp_path / "run", tmp_path / "logs")


def test_start_tracks_and_stop_ends_the_process(tmp_path):
    daemon = _daemon(tmp_path)
    sleep = shutil.which("sleep")
    pid = daemon.start([sleep, "60"])
    assert daemon.pid() == pid
    assert daemon.stop() is True
    assert daemon.pid() is None
    assert not os.path.exists(f"/proc/{pid}")
    assert daemon.stop() is False


def test_a_process_ignoring_term_is_killed(tmp_path):
    daemon = _daemon(tmp_path)
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    daemon.start([sys.executable, "-c", script])
    assert daemon.wait_until(lambda: "up" in daemon.log_file.read_text(), 10)
    assert daemon.stop(timeout=0.5) is True
    assert daemon.pid() is None


def test_a_pid_file_naming_another_program_is_stale_and_never_signalled(tmp_path):
    bystander = subprocess.Popen([shutil.which("sleep"), "60"])
    try:
        daemon = _daemon(tmp_path)
        daemon.run_dir.mkdir(parents=True)
        daemon.pid_file.write_text(json.dumps({"pid": bystander.pid, "executable": "redis-server"}))
        assert daemon.pid() is None
        assert not daemon.pid_file.exists()
        assert daemon.stop() is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_garbage_pid_file_is_ignored(tmp_path):
    daemon = _daemon(tmp_path)
    daemon.run_dir.mkdir(parents=True)
    daemon.pid_file.write_text("not json")
    assert daemon.pid() is None
