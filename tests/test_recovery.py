"""Recovery from a worker killed with SIGKILL at every stage (mdspec/runner.py `recover`, mdspec/land.py).

A background worker is started by a real commit through the git hook; `MDSPEC_TEST_PAUSE=<stage>` makes
it stop at the stage and write `.git/mdspec/paused-<stage>` with its pid; the test kills its process group
with SIGKILL and checks the user's branch, index, files and the queue, then that the next `mdspec run` or
the next spec commit recovers and completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import (
    GOOD_AGENT,
    QUIET,
    last_run,
    pid_gone,
    queued,
    runs,
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)

from mdspec.fast import trailers
from mdspec.git import Repo as GitRepo
from mdspec.run import land


def kill_at(repo: Repo, stage: str) -> int:
    """Wait for the background worker to pause at `stage`, then SIGKILL its process group."""
    marker = repo.state / f"paused-{stage}"
    wait_for(marker.exists, what=f"the worker to pause at {stage}")
    pid = int(marker.read_text())
    os.killpg(pid, signal.SIGKILL)  # the worker is a session leader: its group is its pid
    wait_for(lambda: pid_gone(pid), what="the worker to die")
    marker.unlink()
    return pid


def background_spec(repo: Repo, stage: str, text: str = "# App\nSay hello.\n") -> str:
    return spec_commit(repo, text, env={"MDSPEC_TEST_PAUSE": stage})


def assert_untouched(repo: Repo, before: dict[str, object]) -> None:
    assert user_state(repo) == before
    assert repo.status() == ""


@pytest.mark.parametrize("stage", ["before-backend", "after-commit"])
def test_killed_before_landing_leaves_everything_and_the_next_run_recovers(mdrepo: Repo, stage: str) -> None:
    spec = background_spec(mdrepo, stage)
    before = user_state(mdrepo)
    kill_at(mdrepo, stage)
    assert_untouched(mdrepo, before)
    assert mdrepo.head() == spec
    assert queued(mdrepo) == [spec]  # the trigger survives the kill
    killed = last_run(mdrepo)
    assert killed["status"] == "running"
    if stage == "after-commit":
        assert killed["result"]
        assert mdrepo.git("cat-file", "-t", killed["result"]).strip() == "commit"
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert info["worker_pid"] is None
    assert info["running"] is None
    assert info["queued_without_worker"] is True
    assert [s["commit"] for s in info["spec_commits"]] == [spec]

    proc = mdrepo.mdspec("run", "--foreground")
    assert f"run {killed['id']} was interrupted" in proc.stdout
    interrupted, rerun = runs(mdrepo)[1], runs(mdrepo)[0]
    assert interrupted["id"] == killed["id"]
    assert interrupted["status"] == "interrupted"
    assert rerun["status"] == "landed"
    assert rerun["spec_commits"] == [spec]
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [spec]
    assert mdrepo.head("HEAD~1") == spec
    assert mdrepo.status() == ""
    assert (mdrepo.top / "out.txt").read_text() == "implemented\n"
    assert queued(mdrepo) == []
    assert "interrupted" in mdrepo.mdspec("status").stdout


def test_killed_during_the_backend_kills_what_it_left_and_the_next_commit_recovers(
    mdrepo: Repo, tmp_path: Path
) -> None:
    pidfile = tmp_path / "agent.pid"
    set_agent(
        tmp_path,
        f"""
        import os, pathlib, subprocess, time
        pathlib.Path("partial.txt").write_text("half done\\n")
        child = subprocess.Popen(["sleep", "300"])
        pathlib.Path({str(pidfile)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
    """,
    )
    first = spec_commit(mdrepo, "# A\n", "spec/a.md", env={})  # background, through the hook
    wait_for(pidfile.exists, what="the agent to start")
    agent_pids = [int(p) for p in pidfile.read_text().split()]
    worker = json.loads(mdrepo.mdspec("status", "--json").stdout)["worker_pid"]
    before = user_state(mdrepo)
    os.killpg(worker, signal.SIGKILL)
    wait_for(lambda: pid_gone(worker), what="the worker to die")
    assert not any(pid_gone(p) for p in agent_pids)  # the agent runs in a session of its own
    assert_untouched(mdrepo, before)
    assert queued(mdrepo) == [first]

    set_agent(tmp_path, GOOD_AGENT)
    second = spec_commit(mdrepo, "# B\n", "spec/b.md", env=FOREGROUND)  # the next trigger recovers
    wait_for(lambda: all(pid_gone(p) for p in agent_pids), 5, "the killed run's agent to be killed")
    interrupted, rerun = runs(mdrepo)[1], runs(mdrepo)[0]
    assert interrupted["status"] == "interrupted"
    assert interrupted["spec_commits"] == [first]
    assert rerun["status"] == "landed"
    assert rerun["spec_commits"] == [first, second]
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [first, second]
    # The worktree was reset: the killed agent's half-done file is in no commit.
    assert "partial.txt" not in mdrepo.git("ls-tree", "-r", "--name-only", "HEAD")
    assert mdrepo.status() == ""
    assert queued(mdrepo) == []


def test_killed_between_checkout_and_branch_update_is_finished(mdrepo: Repo) -> None:
    spec = background_spec(mdrepo, "landing")
    kill_at(mdrepo, "landing")
    rec = last_run(mdrepo)
    journal = json.loads((mdrepo.state / "landing.json").read_text())
    assert journal["old"] == spec
    assert journal["new"] == rec["result"]
    assert journal["run_id"] == rec["id"]
    # Files and index are done, the branch is not: HEAD still names the tree the index was made from... no:
    # the index is the result's already, and the killed landing's index.lock keeps git from committing on it.
    assert mdrepo.head() == spec
    assert (mdrepo.top / "out.txt").read_text() == "implemented\n"
    assert (mdrepo.top / ".git" / "index.lock").exists()
    refused = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "user"], cwd=mdrepo.top, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "index.lock" in refused.stderr
    assert mdrepo.head() == spec

    # `mdspec status` (what a user runs first) finishes the landing.
    out = mdrepo.mdspec("status").stdout
    assert f"run {rec['id']} was interrupted: landed" in out
    assert not (mdrepo.state / "landing.json").exists()
    assert not (mdrepo.top / ".git" / "index.lock").exists()
    assert mdrepo.head() == rec["result"]
    assert mdrepo.status() == ""
    done = last_run(mdrepo)
    assert done["id"] == rec["id"]
    assert done["status"] == "landed"
    assert done["landed_as"] == rec["result"]
    assert done["recovery"] == "recovery finished the landing"
    note = mdrepo.git("log", "-1", "--notes=mdspec", "--format=%N", rec["result"])
    assert f"mdspec run {rec['id']}" in note
    assert queued(mdrepo) == []
    assert len(runs(mdrepo)) == 1
    # The user's next ordinary commit keeps the generated work.
    mdrepo.commit("user: readme", {"README.md": "# project\nmore\n"}, env=QUIET)
    assert mdrepo.head("HEAD~1") == rec["result"]
    assert "out.txt" in mdrepo.git("ls-tree", "--name-only", "HEAD")


def test_killed_before_the_checkout_then_user_edits_is_undone_and_held(mdrepo: Repo) -> None:
    spec = background_spec(mdrepo, "checkout")
    kill_at(mdrepo, "checkout")
    rec = last_run(mdrepo)
    (mdrepo.top / ".git" / "index.lock").unlink()  # as git's own message tells the user to
    mdrepo.write("out.txt", "the user's own out.txt\n")  # in the way of the result's new file
    mdrepo.write("README.md", "# project\nedited\n")

    # `mdspec apply` recovers first (and then cannot land the result either: out.txt is still in the way).
    proc = mdrepo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert f"run {rec['id']} was interrupted: held" in proc.stdout
    # Put back: branch, index and the user's files as they were before the landing started.
    assert mdrepo.head() == spec
    assert mdrepo.git("write-tree").strip() == mdrepo.git("rev-parse", f"{spec}^{{tree}}").strip()
    assert (mdrepo.top / "out.txt").read_text() == "the user's own out.txt\n"
    assert sorted(mdrepo.status().splitlines()) == [" M README.md", "?? out.txt"]
    held = last_run(mdrepo)
    assert held["id"] == rec["id"]
    assert held["status"] == "held"
    assert "out.txt" in held["reason"]
    assert "recovery undid the landing" in held["recovery"]
    assert mdrepo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]
    status = mdrepo.mdspec("status").stdout
    assert f"held: {spec[:10]}" in status
    assert f"`mdspec apply {rec['id']}` lands it" in status

    (mdrepo.top / "out.txt").unlink()
    assert mdrepo.mdspec("apply").returncode == 0
    assert last_run(mdrepo)["status"] == "landed"
    assert (mdrepo.top / "out.txt").read_text() == "implemented\n"
    assert mdrepo.status() == " M README.md\n"


def test_recover_after_a_kill_before_the_ref_moved(mdrepo: Repo) -> None:
    """The journal is written before the ref update: a kill in between leaves the branch where it was."""
    repo = GitRepo(mdrepo.top)
    tip = mdrepo.head()
    (mdrepo.state).mkdir(parents=True, exist_ok=True)
    (mdrepo.state / "landing.json").write_text(
        json.dumps({"branch": "refs/heads/main", "old": tip, "new": "0" * 40, "result": "0" * 40, "run_id": "r1"})
    )
    out = land.recover(repo)
    assert out is not None
    assert not out.landed
    assert "nothing landed" in out.reason
    assert mdrepo.head() == tip
    assert not (mdrepo.state / "landing.json").exists()
    assert land.recover(repo) is None


def test_queued_commits_survive_a_kill_and_background_run_recovers(mdrepo: Repo, tmp_path: Path) -> None:
    """`mdspec run` (background) after a kill: a new worker recovers and implements everything queued."""
    a = background_spec(mdrepo, "before-backend", "# A\n")
    b = spec_commit(mdrepo, "# B\n", "spec/b.md", env=QUIET)
    (mdrepo.state / "queue" / b).write_text(f"refs/heads/main\n{os.path.getmtime(mdrepo.state)}\n")
    kill_at(mdrepo, "before-backend")
    assert queued(mdrepo) == sorted([a, b])
    proc = mdrepo.mdspec("run")
    assert "in the background" in proc.stdout
    wait_for(lambda: len(runs(mdrepo)) == 2 and runs(mdrepo)[0]["status"] == "landed", what="the new run")
    wait_for(lambda: not json.loads(mdrepo.mdspec("status", "--json").stdout)["worker_pid"], what="the worker")
    assert runs(mdrepo)[1]["status"] == "interrupted"
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [a, b]
    assert queued(mdrepo) == []
    assert mdrepo.status() == ""


def test_log_follow_says_when_the_worker_was_killed(mdrepo: Repo) -> None:
    background_spec(mdrepo, "before-backend")
    marker = mdrepo.state / "paused-before-backend"
    wait_for(marker.exists, what="the worker to pause")
    follow = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "log", "-f"],
        cwd=mdrepo.top,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    kill_at(mdrepo, "before-backend")
    out, _ = follow.communicate(timeout=20)
    assert "the worker stopped before the run finished; `mdspec run` recovers" in out
