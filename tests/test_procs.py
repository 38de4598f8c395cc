"""Shell commands in their own process group (mdspec/procs.py): the figures they report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mdspec.exec.procs import group_alive, kill_group, run_shell, wait_group


def test_seconds_is_how_long_the_command_ran_not_a_log_offset(tmp_path: Path) -> None:
    log = tmp_path / "check.log"
    log.write_text("x" * 100)  # an earlier round's output: the new output starts at byte 100
    r = run_shell("sleep 0.2; echo done", tmp_path, dict(os.environ), log, timeout=30)
    assert r.returncode == 0
    assert not r.timed_out
    assert r.output_tail.strip() == "done"
    # Bounds only a wrong figure crosses: it took at least the sleep, and far less than the time limit.
    assert 0.2 <= r.seconds < 30, r.seconds


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie can still be signalled)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _read_pid(path: Path) -> int:
    for _ in range(500):
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def test_kill_group_ends_a_member_that_outlives_its_leader_and_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    leader = subprocess.Popen(
        ["bash", "-c", f"(trap '' TERM; sleep 60) & echo $! > {pidfile}; exit 0"], start_new_session=True
    )
    child = _read_pid(pidfile)
    leader.wait()  # the leader is gone and reaped; the group lives on in its child
    assert group_alive(leader.pid)
    assert _alive(child)
    kill_group(leader.pid)
    assert not _alive(child)
    assert not group_alive(leader.pid)


def test_kill_group_reaps_the_zombie_leader_it_waits_for(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    leader = subprocess.Popen(["bash", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], start_new_session=True)
    child = _read_pid(pidfile)
    kill_group(leader.pid, reap=leader.poll)
    assert leader.returncode is not None  # reaped by kill_group, not left a zombie
    assert not _alive(child)
    assert not group_alive(leader.pid)


def test_a_live_group_is_waited_for_until_the_deadline(tmp_path: Path) -> None:
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert wait_group(leader.pid, 0.05, reap=leader.poll) is False
        assert leader.poll() is None
    finally:
        kill_group(leader.pid, reap=leader.poll)
    assert leader.returncode == -signal.SIGTERM


def test_a_group_left_with_only_a_zombie_that_is_not_ours_counts_as_gone(tmp_path: Path) -> None:
    # The zombie's parent moved to a group of its own and never reaps it (bwrap's child, orphaned to an
    # init that reaps once a second, is the case met in practice).
    pidfile = tmp_path / "parent.pid"
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    zombie = os.fork()\n"
        "    if zombie == 0:\n"
        "        os._exit(0)\n"
        "    os.setpgid(0, 0)\n"
        "    os.waitid(os.P_PID, zombie, os.WEXITED | os.WNOWAIT)  # dead, and left unreaped\n"
        f"    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    parent = _read_pid(pidfile)
    try:
        leader.wait()
        os.killpg(leader.pid, 0)  # the zombie is still a member of the group ...
        assert not group_alive(leader.pid)  # ... but nothing live is
        kill_group(leader.pid)
        assert _alive(parent)  # in a group of its own: not ours to kill
    finally:
        os.kill(parent, signal.SIGKILL)
