"""The command line (mdspec/cli.py) on bad input, and what `status` and `log` show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo, make_repo
from runhelpers import (
    QUIET,
    assert_next_run_lands,
    last_run,
    run_fg,
    set_agent,
    spec_commit,
    user_state,
)


def mdspec_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mdspec", *args], cwd=cwd, capture_output=True, text=True)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 1, proc
    assert proc.stderr.startswith("mdspec: error: "), proc.stderr
    assert text in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args", [["status"], ["run"], ["run", "--foreground"], ["apply"], ["log"], ["validate-config"], ["cost"]]
)
def test_not_a_git_repository(tmp_path: Path, args: list[str]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_one_line_error(mdspec_in(plain, *args), "is not inside a git repository")


@pytest.mark.parametrize("args", [["status"], ["run", "--foreground"], ["apply"]])
def test_bare_repository(tmp_path: Path, args: list[str]) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert_one_line_error(mdspec_in(bare, *args), "is a bare repository: mdspec needs a working tree")


def test_unborn_branch(tmp_path: Path) -> None:
    top = tmp_path / "new"
    top.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(top)], check=True)
    r = Repo(top)
    r.mdspec("init", "--git-hook")
    for args in (["run", "--foreground"], ["run"]):
        assert_one_line_error(r.mdspec(*args, check=False), "main has no commits yet: commit a spec first")
    status = r.mdspec("status")
    assert "branch main" in status.stdout
    assert_one_line_error(r.mdspec("apply", check=False), "no held result")
    assert_one_line_error(r.mdspec("log", check=False), "no run yet")
    assert not (r.state / "runs").exists()


def test_detached_head(mdrepo: Repo, tmp_path: Path) -> None:
    spec_commit(mdrepo)
    mdrepo.git("checkout", "-q", "--detach")
    # A spec commit on a detached HEAD starts nothing: there is no branch to land on.
    mdrepo.commit("spec on detached", {"spec/d.md": "# d\n"}, env=FOREGROUND)
    assert "running the agent" not in mdrepo.last_output
    before = user_state(mdrepo)
    assert_one_line_error(run_fg(mdrepo), "HEAD is detached: check out the branch")
    assert_one_line_error(mdrepo.mdspec("run", check=False), "HEAD is detached")
    assert "(branch detached HEAD)" in mdrepo.mdspec("status").stdout
    assert user_state(mdrepo) == before
    mdrepo.git("checkout", "-q", "main")
    assert_next_run_lands(mdrepo, tmp_path)


def test_no_user_identity(mdrepo: Repo, tmp_path: Path) -> None:
    spec_commit(mdrepo)
    mdrepo.git("config", "--unset", "user.name")
    mdrepo.git("config", "--unset", "user.email")
    before = user_state(mdrepo)
    proc = run_fg(mdrepo)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert user_state(mdrepo) == before
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert rec["reason"].startswith("git has no user.name/user.email here: set them with `git config user.name")
    assert "git has no user.name" in mdrepo.mdspec("status").stdout
    mdrepo.git("config", "user.name", "Ada Lovelace")
    mdrepo.git("config", "user.email", "ada@example.com")
    assert_next_run_lands(mdrepo, tmp_path)


def test_no_config_yet(repo: Repo) -> None:
    assert_one_line_error(repo.mdspec("run", "--foreground", check=False), "no .mdspec.toml in")
    status = repo.mdspec("status")
    assert status.returncode == 0
    assert "config: no .mdspec.toml" in status.stdout


def test_status_and_log_after_runs(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path("spec/app.md").write_text("rewritten by the agent\\n")
        print("agent output line")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n\\nThe spec was unclear.\\n")
    """,
    )
    spec = spec_commit(mdrepo, env=FOREGROUND)
    landed = last_run(mdrepo)
    set_agent(tmp_path, "print('no change')\n")
    spec_commit(mdrepo, "# B\n", "spec/b.md", env=FOREGROUND)
    empty = last_run(mdrepo)

    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert info["branch"] == "main"
    assert info["repository"] == str(mdrepo.top)
    assert info["running"] is None
    assert info["worker_pid"] is None
    assert info["queued"] == []
    assert info["config_error"] is None
    assert [r["id"] for r in info["runs"]] == [empty["id"], landed["id"]]
    assert info["runs"][1]["violations"] == ["spec/app.md (protected)"]
    assert info["runs"][1]["spec_commits"] == [spec]
    assert info["pending"] == []  # a run that changed nothing still implements (an empty generated commit)
    assert empty["status"] == "empty"
    assert empty["landed_as"] == mdrepo.head()

    text = mdrepo.mdspec("status").stdout
    assert "running: nothing" in text
    assert "pending: nothing" in text
    assert f"  {empty['id']}  empty" in text
    assert "— the agent changed nothing" in text
    assert f"  {landed['id']}  landed" in text
    assert f"→ {landed['landed_as'][:10]}" in text

    log = mdrepo.mdspec("log", landed["id"]).stdout
    assert log.startswith(f"run {landed['id']}: landed — fast-forward\n")
    assert f"  implements: {spec[:10]} " in log
    assert "  restored: spec/app.md (protected)" in log
    assert "  check: skipped" in log
    assert "agent output line" in log  # the command's output
    assert mdrepo.mdspec("log").stdout.startswith(f"run {empty['id']}: empty — the agent changed nothing")
    follow = mdrepo.mdspec("log", "-f", landed["id"])
    assert follow.returncode == 0
    assert f"run {landed['id']}: landed" in follow.stdout
    assert_one_line_error(mdrepo.mdspec("log", "nope", check=False), "no run matching 'nope'")
    assert_one_line_error(mdrepo.mdspec("log", "2", check=False), "no run matching '2'")  # ambiguous prefix
    note = mdrepo.git("log", "-1", "--notes=mdspec", "--format=%N", landed["landed_as"])
    assert f"mdspec run {landed['id']}" in note
    assert "check: skipped" in note


def test_status_of_a_held_run_says_how_to_apply(mdrepo: Repo, tmp_path: Path) -> None:
    spec_commit(mdrepo)
    mdrepo.write("out.txt", "the user's own out.txt\n")
    assert run_fg(mdrepo).returncode == 0
    rec = last_run(mdrepo)
    text = mdrepo.mdspec("status").stdout
    assert f"  {rec['id']}  held" in text
    assert f"`mdspec apply {rec['id']}` lands it" in text
    assert "out.txt" in text


def test_run_reports_nothing_pending(mdrepo: Repo) -> None:
    proc = run_fg(mdrepo)
    assert proc.returncode == 0
    assert "nothing pending" in proc.stdout
    assert "nothing pending" in mdrepo.mdspec("run").stdout


def test_unexpected_error_prints_one_line_and_keeps_the_traceback(mdrepo: Repo) -> None:
    (mdrepo.state / "runs").mkdir(parents=True)
    (mdrepo.state / "runs" / "20990101-000000-abcdef").mkdir()
    (mdrepo.state / "runs" / "20990101-000000-abcdef" / "run.json").write_text("{not json")
    # A corrupt record is shown as unreadable, not a crash.
    text = mdrepo.mdspec("status").stdout
    assert "unreadable" in text
    log = mdrepo.mdspec("log")
    assert "run.json unreadable" in log.stdout


def test_second_repository_is_independent(tmp_path: Path) -> None:
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    a.mdspec("init", "--git-hook")
    assert "config: no .mdspec.toml" in b.mdspec("status").stdout
    a.commit("set up", env=QUIET)
    assert "pending: nothing" in a.mdspec("status").stdout


# --- a reader that stops early (`mdspec log | head -1`) is an ordinary end ------------------------------


def _error_logs(repo: Repo) -> list[Path]:
    import tempfile

    return [p for p in (repo.state / "error.log", Path(tempfile.gettempdir()) / "mdspec-error-0.log") if p.exists()]


@pytest.mark.parametrize("args", [["log"], ["status"], ["status", "--json"], ["log", "-f"]])
def test_closed_pipe_ends_quietly(mdrepo: Repo, args: list[str]) -> None:
    spec_commit(mdrepo, env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    before = _error_logs(mdrepo)
    # The reader is gone before mdspec writes a byte: every write meets a closed pipe.
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run(
        [sys.executable, "-m", "mdspec", *args], cwd=mdrepo.top, stdout=w, stderr=subprocess.PIPE, text=True
    )
    os.close(w)
    assert proc.stderr == "", proc.stderr
    assert proc.returncode in (0, 141)
    assert _error_logs(mdrepo) == before


@pytest.mark.parametrize("cmd", ["log", "status"])
def test_head_through_a_shell_pipe(mdrepo: Repo, cmd: str) -> None:
    spec_commit(mdrepo, env=FOREGROUND)
    proc = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -m mdspec {cmd} | head -1"], cwd=mdrepo.top, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stderr == "", proc.stderr
    assert not (mdrepo.state / "error.log").exists()
