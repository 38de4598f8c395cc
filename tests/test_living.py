"""Living with runs (issue: coalescing, a moving branch, follow, cancel, revert, notes, TASK.md).

Runs start in the background through the real git hook; the command backend's agents are small scripts
that wait on a flag file so the test can commit, follow or cancel while a run is going on. The built-in
agent is driven by the fake Messages API server (tests/fakeapi.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FOREGROUND, Repo
from fakeapi import FakeAPI, fake_api  # noqa: F401 - the fixture
from runhelpers import (
    GOOD_AGENT,
    QUIET,
    last_run,
    pid_gone,
    queued,
    run_fg,
    runs,
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)

from mdspec.fast import trailers

BG: dict[str, str] = {}  # commit with the hook starting a background worker

# Waits for the flag (once per run it exists already), then writes a file unique to the run.
WAITING_AGENT = """
import os, pathlib, time
pathlib.Path({started!r}).write_text("started")
deadline = time.time() + 30
while not pathlib.Path({flag!r}).exists() and time.time() < deadline:
    time.sleep(0.02)
pathlib.Path("gen.txt").write_text(f"run at {{time.time_ns()}}\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Write gen.txt\\n")
"""


class Waiting:
    """The configured agent waits for `release()`; `started` appears when a run's agent starts."""

    def __init__(self, repo: Repo, tmp_path: Path, body: str = WAITING_AGENT) -> None:
        self.repo = repo
        self.started = tmp_path / "started"
        self.flag = tmp_path / "go"
        set_agent(tmp_path, body.format(started=str(self.started), flag=str(self.flag)))

    def wait_started(self) -> None:
        wait_for(self.started.exists, what="the agent to start")

    def release(self) -> None:
        self.flag.write_text("go")


def idle(repo: Repo) -> bool:
    info = json.loads(repo.mdspec("status", "--json").stdout)
    return not info["worker_pid"] and not info["queued"]


def settle(repo: Repo, n_runs: int) -> list[dict[str, Any]]:
    wait_for(
        lambda: len(runs(repo)) == n_runs and runs(repo)[0]["status"] != "running" and idle(repo),
        30,
        f"{n_runs} runs to finish",
    )
    return runs(repo)


# --- coalescing and a moving branch -------------------------------------------------------------------


def test_three_spec_commits_during_a_run_cost_one_more_run(mdrepo: Repo, tmp_path: Path) -> None:
    agent = Waiting(mdrepo, tmp_path)
    first = spec_commit(mdrepo, "# A\n", "spec/a.md", env=BG)
    agent.wait_started()
    later = [spec_commit(mdrepo, f"# {n}\n", f"spec/{n}.md", env=BG) for n in ("b", "c", "d")]
    agent.release()
    one, two = reversed(settle(mdrepo, 2))
    assert one["spec_commits"] == [first]
    assert one["status"] == "landed"
    assert two["spec_commits"] == later
    assert two["status"] == "landed"
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == later  # one trailer each, oldest first
    prompt = (mdrepo.state / "runs" / two["id"] / "prompt.md").read_text()
    marks = [prompt.index(f"Spec commit {i} of 3: {sha[:10]}") for i, sha in enumerate(later, 1)]
    assert marks == sorted(marks)
    for n in ("b", "c", "d"):
        assert f"spec/{n}.md" in prompt
    assert mdrepo.status() == ""


def test_user_commits_code_then_spec_during_a_run(mdrepo: Repo, tmp_path: Path) -> None:
    agent = Waiting(mdrepo, tmp_path)
    first = spec_commit(mdrepo, "# A\n", "spec/a.md", env=BG)
    agent.wait_started()
    code = mdrepo.commit("user: code", {"src/x.py": "x = 1\n"}, env=BG)
    second = spec_commit(mdrepo, "# B\n", "spec/b.md", env=BG)
    agent.release()
    one, two = reversed(settle(mdrepo, 2))
    assert one["status"] == "landed"
    assert one["reason"] == f"rebased onto {second[:10]}"
    assert one["base"] == first
    assert one["landed_as"] != one["result"]
    # The next run implements the later spec commit on a base that includes the landed result.
    assert two["spec_commits"] == [second]
    assert two["status"] == "landed"
    assert two["base"] == one["landed_as"]
    history = mdrepo.git("log", "--format=%H", "-5").split()
    assert history[:4] == [two["landed_as"], one["landed_as"], second, code]
    assert mdrepo.status() == ""
    assert (mdrepo.top / "src/x.py").read_text() == "x = 1\n"


def test_conflict_is_held_status_says_why_and_apply_retries(mdrepo: Repo, tmp_path: Path) -> None:
    mdrepo.commit("add app", {"app.txt": "line 1\nline 2\n"}, env=QUIET)
    agent = Waiting(
        mdrepo,
        tmp_path,
        WAITING_AGENT.replace(
            'pathlib.Path("gen.txt").write_text(f"run at {{time.time_ns()}}\\n")',
            'pathlib.Path("app.txt").write_text("line 1 by the agent\\nline 2\\n")',
        ),
    )
    spec = spec_commit(mdrepo, env=BG)
    agent.wait_started()
    mine = mdrepo.commit("user: line 1", {"app.txt": "line one\nline 2\n"})
    before = user_state(mdrepo)
    agent.release()
    (rec,) = settle(mdrepo, 1)
    assert rec["status"] == "held"
    assert user_state(mdrepo) == before
    why = "conflicts with commits made on the branch since the run started"
    status = mdrepo.mdspec("status").stdout
    assert f"held: {spec[:10]} " in status
    assert why in status
    assert f"`mdspec apply {rec['id']}` lands it" in status
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert [(s["commit"], s["state"], s["run"]) for s in info["spec_commits"]] == [(spec, "held", rec["id"])]
    assert info["held"][0]["run"] == rec["id"]
    # Still in the way: apply hands the merge to git; the user backs out of it and nothing changed.
    proc = mdrepo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert "CONFLICT (content): Merge conflict in app.txt" in proc.stdout
    mdrepo.git("cherry-pick", "--abort")
    assert user_state(mdrepo) == before
    # The user takes their change back; apply retries and lands, rebased onto the new tip.
    mdrepo.git("revert", "--no-edit", mine, env=QUIET)
    assert mdrepo.mdspec("apply").returncode == 0
    landed = last_run(mdrepo)
    assert landed["status"] == "landed"
    assert landed["reason"].startswith("rebased onto")
    assert (mdrepo.top / "app.txt").read_text() == "line 1 by the agent\nline 2\n"
    assert "pending: nothing" in mdrepo.mdspec("status").stdout


# --- status and log -f --------------------------------------------------------------------------------


def _follow(repo: Repo, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mdspec", "log", "-f"],
        cwd=repo.top,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_log_follow_and_status_on_a_background_run_from_a_commit(mdrepo: Repo, tmp_path: Path) -> None:
    agent = Waiting(mdrepo, tmp_path)
    spec = spec_commit(mdrepo, env=BG)
    out = tmp_path / "follow.txt"
    follow = _follow(mdrepo, out)  # may start before the worker has created the run: it waits for it
    agent.wait_started()
    wait_for(lambda: "  command: " in out.read_text(), what="log -f to print the running command")
    assert follow.poll() is None  # still following
    status = mdrepo.mdspec("status").stdout
    assert "running: run " in status
    assert "backend, " in status
    assert "turn 0, 1 tool call" in status
    assert "follow: mdspec log -f" in status
    assert f"pending (running now): {spec[:10]}" in status
    live = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert live["running"]["stage"] == "backend"
    assert live["live"].startswith(f"run {live['running']['id']}")
    agent.release()
    assert follow.wait(timeout=30) == 0
    text = out.read_text()
    rec = last_run(mdrepo)
    assert text.startswith(f"run {rec['id']}: running")
    assert f"  implements: {spec[:10]} " in text
    assert "  turn 1" in text
    assert text.rstrip().endswith(f"run {rec['id']}: landed — fast-forward\n  landed as {rec['landed_as'][:10]}")


def test_log_follow_shows_tool_calls_tokens_and_cost_of_the_built_in_agent(
    mdrepo: Repo,
    tmp_path: Path,
    fake_api: FakeAPI,  # noqa: F811
) -> None:
    mdrepo.configure('[agent]\nbackend = "anthropic"\nmodel = "claude-sonnet-4-5"\n')
    mdrepo.commit("use the built-in agent", env=QUIET)
    flag = tmp_path / "go"
    fake_api.edit("create", "app.py", file_text="print('hello')\n")
    fake_api.bash(f"while [ ! -e {flag} ]; do sleep 0.02; done; echo checked")
    fake_api.text("Add app.py\n\nPrints hello.")
    out = tmp_path / "follow.txt"
    spec_commit(mdrepo, env=BG)
    follow = _follow(mdrepo, out)
    wait_for(
        lambda: "  bash: while [ ! -e" in out.read_text() or "turn 2" in out.read_text(),
        30,
        "log -f to show the first turns",
    )
    wait_for(lambda: "  str_replace_based_edit_tool: create app.py" in out.read_text(), what="the edit")
    status = mdrepo.mdspec("status").stdout
    assert " cache write" in status
    assert "turn 2, 1 tool call" in status  # the bash call is still running
    flag.write_text("go")
    assert follow.wait(timeout=30) == 0
    text = out.read_text()
    assert "  turn 1: tool_use, " in text
    assert " cache write" in text
    assert "so far" in text
    assert "  bash: while [ ! -e" in text
    assert "landed — fast-forward" in text
    assert (mdrepo.top / "app.py").read_text() == "print('hello')\n"


# --- cancel -------------------------------------------------------------------------------------------

STUCK_AGENT = """
import os, pathlib, subprocess, time
pathlib.Path("partial.txt").write_text("half done\\n")
child = subprocess.Popen(["sleep", "300"])
pathlib.Path({pids!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
time.sleep(300)
"""


def test_cancel_stops_the_run_and_what_it_started_and_keeps_the_queue(mdrepo: Repo, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    set_agent(tmp_path, STUCK_AGENT.format(pids=str(pids)))
    first = spec_commit(mdrepo, "# A\n", "spec/a.md", env=BG)
    wait_for(pids.exists, what="the agent to start")
    second = spec_commit(mdrepo, "# B\n", "spec/b.md", env=BG)  # queued behind the run
    agent_pids = [int(p) for p in pids.read_text().split()]
    worker = json.loads(mdrepo.mdspec("status", "--json").stdout)["worker_pid"]
    before = user_state(mdrepo)

    proc = mdrepo.mdspec("cancel")
    rec = last_run(mdrepo)
    assert proc.stdout.strip() == (
        f"mdspec: run {rec['id']} cancelled: cancelled (`mdspec cancel`); nothing "
        "landed; 1 spec commit(s) stay queued (`mdspec run` starts them)"
    )
    wait_for(lambda: pid_gone(worker) and all(pid_gone(p) for p in agent_pids), 5, "the run's processes to die")
    assert rec["status"] == "cancelled"
    assert rec["spec_commits"] == [first]
    assert user_state(mdrepo) == before
    assert mdrepo.head() == second  # nothing landed
    assert queued(mdrepo) == [second]  # the other commit's trigger stays; the worker drained nothing more
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert info["worker_pid"] is None
    assert info["queued_without_worker"]
    assert [s["commit"] for s in info["spec_commits"]] == [first, second]  # both still pending
    assert "cancelled" in info["spec_commits"][0]["reason"]

    set_agent(tmp_path, GOOD_AGENT)
    assert run_fg(mdrepo).returncode == 0
    done = last_run(mdrepo)
    assert done["status"] == "landed"
    assert done["spec_commits"] == [first, second]
    files = mdrepo.git("ls-tree", "-r", "--name-only", "HEAD").split()
    assert "partial.txt" not in files
    assert "out.txt" in files  # the next run started from a clean worktree
    assert queued(mdrepo) == []
    assert mdrepo.status() == ""


def test_cancel_during_the_check_kills_the_check(mdrepo: Repo, tmp_path: Path) -> None:
    pidfile = tmp_path / "check.pid"
    config = mdrepo.top.joinpath(".mdspec.toml").read_text()
    mdrepo.configure(f'check = "sleep 300 & echo $! > {pidfile}; wait"\n' + config)
    mdrepo.commit("add a check", env=QUIET)
    spec = spec_commit(mdrepo, env=BG)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the check to start")
    sleeper = int(pidfile.read_text())
    assert mdrepo.mdspec("cancel").returncode == 0
    wait_for(lambda: pid_gone(sleeper), 5, "the check's process group to die")
    rec = last_run(mdrepo)
    assert rec["status"] == "cancelled"
    assert "result" not in rec
    assert mdrepo.head() == spec
    assert mdrepo.status() == ""


def test_cancel_kills_the_built_in_agents_bash_session(mdrepo: Repo, tmp_path: Path, fake_api: FakeAPI) -> None:  # noqa: F811
    mdrepo.configure('[agent]\nbackend = "anthropic"\n')
    mdrepo.commit("use the built-in agent", env=QUIET)
    pidfile = tmp_path / "bash.pid"
    fake_api.bash(f"sleep 300 & echo $! > {pidfile}; wait")
    spec = spec_commit(mdrepo, env=BG)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the bash tool to run")
    sleeper = int(pidfile.read_text())
    assert mdrepo.mdspec("cancel").returncode == 0
    wait_for(lambda: pid_gone(sleeper), 5, "the bash session's process group to die")
    assert last_run(mdrepo)["status"] == "cancelled"
    assert mdrepo.head() == spec
    assert mdrepo.status() == ""


def test_cancel_with_nothing_running_is_one_line(mdrepo: Repo) -> None:
    proc = mdrepo.mdspec("cancel")
    assert proc.returncode == 0
    assert proc.stdout == "mdspec: nothing to cancel: no run is going on\n"


def test_cancel_of_a_foreground_run(mdrepo: Repo, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    set_agent(tmp_path, STUCK_AGENT.format(pids=str(pids)))
    spec_commit(mdrepo)
    fg = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "run", "--foreground"],
        cwd=mdrepo.top,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(pids.exists, what="the agent to start")
    assert mdrepo.mdspec("cancel").returncode == 0
    assert fg.wait(timeout=20) == 1
    assert last_run(mdrepo)["status"] == "cancelled"
    assert all(pid_gone(int(p)) for p in pids.read_text().split())


# --- revert -------------------------------------------------------------------------------------------


def test_plain_git_revert_of_a_generated_commit_waits_for_mdspec_run(mdrepo: Repo) -> None:
    spec = spec_commit(mdrepo, env=FOREGROUND)
    mdrepo.git("revert", "--no-edit", "HEAD", env=BG)  # through the hook: starts nothing
    assert len(runs(mdrepo)) == 1
    assert queued(mdrepo) == []
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert [(s["commit"], s["state"]) for s in info["spec_commits"]] == [(spec, "reverted")]
    assert run_fg(mdrepo).returncode == 0
    assert last_run(mdrepo)["spec_commits"] == [spec]
    assert (mdrepo.top / "out.txt").read_text() == "implemented\n"


def test_plain_git_revert_of_a_spec_commit_is_implemented(mdrepo: Repo, tmp_path: Path) -> None:
    spec = spec_commit(mdrepo, env=FOREGROUND)
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("out.txt").unlink()
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Remove out.txt: the spec is gone\\n")
    """,
    )
    mdrepo.git("revert", "--no-edit", spec, env=FOREGROUND)
    revert = mdrepo.head("HEAD~1")
    assert mdrepo.git("log", "-1", "--format=%s", revert).strip().startswith("Revert ")
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["spec_commits"] == [revert]
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [revert]
    assert not (mdrepo.top / "out.txt").exists()
    assert "pending: nothing" in mdrepo.mdspec("status").stdout


# --- the git note ---------------------------------------------------------------------------------------


def test_git_note_carries_the_run_summary(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import json, os, pathlib
        pathlib.Path("out.txt").write_text("implemented\\n")
        print(json.dumps({"result": "Add out.txt", "num_turns": 3, "total_cost_usd": 0.125,
                          "usage": {"input_tokens": 1200, "output_tokens": 340, "cache_read_input_tokens": 800}}))
    """,
    )
    spec_commit(mdrepo, env=FOREGROUND)
    rec = last_run(mdrepo)
    note = mdrepo.git("notes", "--ref=mdspec", "show", "HEAD")
    lines = dict(line.split(": ", 1) for line in note.splitlines()[1:])
    assert note.splitlines()[0] == f"mdspec run {rec['id']}"
    assert lines["backend"] == "command"
    assert lines["model"] == "-"  # the CLI picks its own model
    assert rec["model"] == ""
    assert lines["turns"] == "3"
    assert lines["input tokens"] == "1200"
    assert lines["output tokens"] == "340"
    assert lines["cache read tokens"] == "800"
    assert lines["cost"] == "$0.1250"
    assert lines["check"] == "skipped"
    assert lines["duration"].endswith("s")
    assert f"mdspec run {rec['id']}" in mdrepo.git("log", "-1", "--notes=mdspec")


# --- TASK.md --------------------------------------------------------------------------------------------


def test_task_md_is_the_task_the_agent_cannot_edit_it_and_deleting_it_starts_nothing(
    mdrepo: Repo, tmp_path: Path
) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path("TASK.md").write_text("Done, says the agent.\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Fix the greeting\\n")
    """,
    )
    mdrepo.configure("keep_task = true\n" + (mdrepo.top / ".mdspec.toml").read_text())  # deleted by hand below
    mdrepo.commit("keep TASK.md", env=QUIET)
    task = mdrepo.commit("task: fix the greeting", {"TASK.md": "The greeting says helo; fix it.\n"}, env=FOREGROUND)
    rec = last_run(mdrepo)
    prompt = (mdrepo.state / "runs" / rec["id"] / "prompt.md").read_text()
    assert "The greeting says helo; fix it." in prompt
    assert rec["status"] == "landed"
    assert rec["violations"] == ["TASK.md (protected)"]
    assert "TASK.md" not in mdrepo.git("diff-tree", "-r", "--name-only", "--no-commit-id", "HEAD").split()
    assert (mdrepo.top / "TASK.md").read_text() == "The greeting says helo; fix it.\n"
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [task]
    mdrepo.git("rm", "-q", "TASK.md")
    done = mdrepo.commit("task done", env=FOREGROUND)
    assert mdrepo.head() == done
    assert len(runs(mdrepo)) == 1
    assert queued(mdrepo) == []


@pytest.fixture(autouse=True)
def _no_stray_workers(mdrepo: Repo) -> Any:
    """A failed test must not leave a worker or its agent running into the next test."""
    yield
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    if info["worker_pid"]:
        os.kill(info["worker_pid"], signal.SIGTERM)
