"""The hook through the real pre-commit framework: `repo: local` and a pinned remote repository.

Each form goes through a spec commit (a generated commit follows), a non-spec commit (history untouched)
and a `git revert` of the generated commit (applies cleanly, starts no run). The remote form makes
pre-commit build its own environment for mdspec from a clone of this project, which pip-installs mdspec's
dependencies; set MDSPEC_TEST_OFFLINE=1 to skip it where no package index is reachable.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import FOREGROUND, PROJECT, Repo, agent_script

from mdspec.fast import trailers

OFFLINE = bool(os.environ.get("MDSPEC_TEST_OFFLINE"))

AGENT = """
import os, pathlib
specs = sorted(p for p in pathlib.Path("spec").rglob("*.md") if p.name != "README.md")
pathlib.Path("out.txt").write_text("".join(p.read_text() for p in specs))
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Implement the spec\\n\\nWrote out.txt.\\n")
"""


def _set_up(repo: Repo, tmp_path: Path, *init_args: str) -> None:
    """`mdspec init` (pre-commit form), a command backend, and the set-up committed without a run."""
    out = repo.mdspec("init", *init_args).stdout
    assert "installed the post-commit hook with pre-commit" in out
    hook = (repo.top / ".git" / "hooks" / "post-commit").read_text()
    assert "pre-commit" in hook  # pre-commit's own hook script, not mdspec's shim
    repo.configure(f'[agent]\nbackend = "command"\ncommand = "{agent_script(tmp_path, AGENT)}"\n')
    repo.commit("set up mdspec", env={"MDSPEC_RUNNING": "1"})
    assert repo.log(1) == ["set up mdspec"]
    assert not (repo.state / "runs").exists()


def _new_commits(repo: Repo, before: str) -> list[str]:
    return repo.git("rev-list", "--reverse", f"{before}..HEAD").split()


def _runs(repo: Repo) -> list[str]:
    d = repo.state / "runs"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _git_commit(repo: Repo, message: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    repo.git("add", "-A")
    return repo.try_commit(message, env)


def _full_cycle(repo: Repo) -> None:
    # A spec commit: the hook runs the agent (foreground) and a generated commit follows it.
    before = repo.head()
    repo.write("spec/app.md", "# App\nSay hello.\n")
    proc = _git_commit(repo, "spec: greet", env=FOREGROUND)
    assert proc.returncode == 0, proc.stderr
    assert "mdspec" in proc.stderr, proc.stderr  # pre-commit ran our hook
    assert "Passed" in proc.stderr, proc.stderr
    assert "lands as soon as this git command returns" in proc.stdout + proc.stderr
    repo.wait_landed()
    spec, generated = _new_commits(repo, before)
    assert repo.message(spec).startswith("spec: greet")
    msg = repo.message(generated)
    assert msg.startswith("mdspec: Implement the spec")
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    assert trailers.values(msg, trailers.CHECK) == ["skipped"]
    assert repo.head() == generated
    assert repo.head("HEAD~1") == spec
    assert (repo.top / "out.txt").read_text() == "# App\nSay hello.\n"
    assert repo.status() == ""
    runs = _runs(repo)
    assert len(runs) == 1

    # Reverting the generated commit is plain git and starts nothing.
    repo.git("revert", "--no-edit", "HEAD", env=FOREGROUND)
    assert repo.log(1) == ['Revert "mdspec: Implement the spec"']
    assert repo.head("HEAD~1") == generated
    assert not (repo.top / "out.txt").exists()
    assert _runs(repo) == runs
    assert repo.status() == ""

    # A commit that touches no watched path leaves history as it is.
    before = repo.head()
    repo.write("src/x.py", "x = 1\n")
    proc = _git_commit(repo, "code", env=FOREGROUND)
    assert proc.returncode == 0, proc.stderr
    (code,) = _new_commits(repo, before)
    assert repo.head() == code
    assert repo.log(1) == ["code"]
    assert _runs(repo) == runs
    assert not list(repo.state.glob("queue/*"))


def test_local_form(repo: Repo, tmp_path: Path) -> None:
    _set_up(repo, tmp_path)
    cfg = yaml.safe_load((repo.top / ".pre-commit-config.yaml").read_text())
    assert cfg["repos"][0]["repo"] == "local"
    assert cfg["repos"][0]["hooks"][0]["entry"] == "mdspec hook post-commit"
    assert "post-commit" in cfg["default_install_hook_types"]
    _full_cycle(repo)


GATED = """
import pathlib, sys, time
deadline = time.time() + 60
while not pathlib.Path({go!r}).exists():  # released by the test once `git commit` has returned
    if time.time() > deadline:
        sys.exit("never released: git commit waited for the run")
    time.sleep(0.02)
"""


def test_local_form_background(repo: Repo, tmp_path: Path) -> None:
    _set_up(repo, tmp_path)
    go = tmp_path / "go"
    agent_script(tmp_path, GATED.format(go=str(go)) + AGENT)  # the configured agent, held until released
    before = repo.head()
    repo.write("spec/app.md", "# App\nIn the background.\n")
    proc = _git_commit(repo, "spec: background")
    # The commit returned while the agent was still held: the hook did not wait for the run.
    assert proc.returncode == 0, proc.stderr
    assert len(_new_commits(repo, before)) == 1, "a generated commit before the agent was released"
    go.write_text("go")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mdspec: ")]
    assert len(lines) == 1, proc.stderr
    assert "queued" in lines[0]
    assert "mdspec status" in lines[0]
    spec = _new_commits(repo, before)[0]
    assert repo.message(spec).startswith("spec: background")

    deadline = time.monotonic() + 20
    info: dict[str, object] = {}
    while time.monotonic() < deadline:
        info = json.loads(repo.mdspec("status", "--json").stdout)
        landed = repo.head() != spec and trailers.values(repo.message(), trailers.IMPLEMENTS) == [spec]
        if landed and not info["worker_pid"] and not info["queued"]:
            break
        time.sleep(0.2)
    else:
        log = (repo.state / "worker.log").read_text() if (repo.state / "worker.log").exists() else ""
        raise AssertionError(f"no generated commit within 20 s; status {info}; worker log:\n{log}")
    assert repo.head("HEAD~1") == spec
    assert (repo.top / "out.txt").read_text() == "# App\nIn the background.\n"
    assert repo.status() == ""
    assert info["pending"] == []
    assert info["running"] is None


# --- the remote form: pre-commit clones mdspec at a pinned commit and builds its own environment --------


@pytest.fixture(scope="session")
def project_clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not (PROJECT / ".git").exists():
        pytest.skip("the project is not a git checkout; nothing to clone")
    dest = tmp_path_factory.mktemp("mdspec-clone") / "mdspec"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(dest)], check=True, env=env)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=dest, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()
    return dest, sha


@pytest.fixture(scope="session")
def session_pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit cache for the session, so mdspec's hook environment is built only once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.mark.skipif(OFFLINE, reason="MDSPEC_TEST_OFFLINE: pre-commit cannot pip-install mdspec")
def test_remote_form(
    repo: Repo,
    tmp_path: Path,
    project_clone: tuple[Path, str],
    session_pre_commit_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clone, sha = project_clone
    monkeypatch.setenv("PRE_COMMIT_HOME", str(session_pre_commit_home))
    # pip byte-compiles every module of mdspec's dependencies when it builds the hook's environment;
    # Python compiles what the hook imports anyway, so the test spends that time on nothing.
    monkeypatch.setenv("PIP_NO_COMPILE", "1")
    # The hook must run mdspec as pre-commit installed it, not this checkout's code.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    _set_up(repo, tmp_path, "--pre-commit-repo", str(clone), "--rev", sha)
    cfg = yaml.safe_load((repo.top / ".pre-commit-config.yaml").read_text())
    assert cfg["repos"][0] == {"repo": str(clone), "rev": sha, "hooks": [{"id": "mdspec"}]}
    envs = list(session_pre_commit_home.glob("repo*/py_env-*/bin/mdspec"))
    assert envs, "pre-commit did not build an environment with mdspec's console script"
    _full_cycle(repo)


# --- pre-commit hides unstaged changes while post-commit hooks run: a landing must wait for them -------

APP = "line 1\nline 2\nline 3\n"
APP_AGENT = """
import os, pathlib, time
go = pathlib.Path({go!r})
pathlib.Path({started!r}).write_text("started")
deadline = time.time() + 30
while {wait} and not go.exists() and time.time() < deadline:
    time.sleep(0.02)
app = pathlib.Path("app.py")
app.write_text(app.read_text().replace("line 1\\n", "line 1 by the agent\\n"))
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Change line 1\\n")
"""


def _set_up_app(repo: Repo, tmp_path: Path, wait: bool, slow_hook: bool = False) -> tuple[Path, Path]:
    """pre-commit form; an agent that changes app.py line 1 (after `go` appears, when `wait`)."""
    started, go = tmp_path / "agent-started", tmp_path / "agent-go"
    repo.mdspec("init")
    body = APP_AGENT.format(go=str(go), started=str(started), wait=wait)
    repo.configure(f'[agent]\nbackend = "command"\ncommand = "{agent_script(tmp_path, body)}"\n')
    if slow_hook:
        (tmp_path / "hook-go").touch()  # passes at once until the test removes this file
        # Another post-commit hook of the user's that takes its time (waits for a file the test writes).
        path = repo.top / ".pre-commit-config.yaml"
        cfg = yaml.safe_load(path.read_text())
        cfg["repos"].append(
            {
                "repo": "local",
                "hooks": [
                    {
                        "id": "slow",
                        "name": "slow",
                        "language": "system",
                        "stages": ["post-commit"],
                        "always_run": True,
                        "pass_filenames": False,
                        "entry": (
                            f"sh -c 'touch {tmp_path}/hook-running; "
                            f"while [ ! -e {tmp_path}/hook-go ]; do sleep 0.02; done'"
                        ),
                    }
                ],
            }
        )
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        repo.mdspec("init")  # installs the hook types again; changes nothing else
    repo.commit("set up mdspec", {"app.py": APP}, env={"MDSPEC_RUNNING": "1"})
    return started, go


def test_unstaged_edit_survives_a_foreground_run_under_pre_commit(repo: Repo, tmp_path: Path) -> None:
    _set_up_app(repo, tmp_path, wait=False)
    repo.write("app.py", APP.replace("line 1\n", "line 1 by the user, not staged\n"))
    repo.write("spec/app.md", "# App\nChange line 1.\n")
    repo.git("add", "spec/app.md")
    proc = _git_commit_staged(repo, "spec: line 1", env=FOREGROUND)
    assert proc.returncode == 0, proc.stderr
    repo.wait_landed()
    # The edit pre-commit hid while the hooks ran is back, untouched; the result could not land over it.
    assert (repo.top / "app.py").read_text() == APP.replace("line 1\n", "line 1 by the user, not staged\n")
    assert repo.status() == " M app.py\n"
    rec = _last(repo)
    assert rec["status"] == "held", rec
    assert "app.py" in str(rec["reason"]), rec
    assert "`mdspec apply" in repo.mdspec("status").stdout


def test_background_landing_waits_for_a_commit_whose_hooks_still_run(repo: Repo, tmp_path: Path) -> None:
    started, go = _set_up_app(repo, tmp_path, wait=True, slow_hook=True)
    repo.write("spec/app.md", "# App\nChange line 1.\n")
    repo.git("add", "spec/app.md")
    assert _git_commit_staged(repo, "spec: line 1").returncode == 0
    wait_for_file(started)
    (tmp_path / "hook-go").unlink()
    (tmp_path / "hook-running").unlink()
    # The user edits app.py (not staged) and commits something else; its slow hook keeps git commit running,
    # with the edit hidden by pre-commit meanwhile.
    repo.write("app.py", APP.replace("line 3\n", "line 3 by the user\n"))
    repo.write("notes.txt", "the user's notes\n")
    repo.git("add", "notes.txt")
    user = subprocess.Popen(
        ["git", "commit", "-m", "user: notes"],
        cwd=repo.top,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_file(tmp_path / "hook-running")
    assert (repo.top / "app.py").read_text() == APP  # pre-commit has hidden the edit
    mine = repo.head()
    go.touch()  # the run finishes now and wants to land
    wait_for(lambda: _last(repo).get("stage") == "landing", what="the run to reach its landing")
    time.sleep(0.5)
    assert repo.head() == mine, "landed while the user's git commit was still running its hooks"
    (tmp_path / "hook-go").touch()
    out, _ = user.communicate(timeout=30)
    assert user.returncode == 0, out
    wait_for(lambda: _last(repo)["status"] != "running", what="the landing after the commit returned")
    # pre-commit put the edit back when its hooks ended; only then did the landing look, and hold.
    rec = _last(repo)
    assert rec["status"] == "held", rec
    assert "app.py" in str(rec["reason"]), rec
    assert (repo.top / "app.py").read_text() == APP.replace("line 3\n", "line 3 by the user\n")
    assert repo.head() == mine
    assert repo.status() == " M app.py\n"
    # Once the user commits the edit, `mdspec apply` merges both.
    repo.git("commit", "-qam", "user: line 3")
    assert repo.mdspec("apply").returncode == 0
    assert (repo.top / "app.py").read_text() == "line 1 by the agent\nline 2\nline 3 by the user\n"
    assert repo.status() == ""


def _git_commit_staged(repo: Repo, message: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return repo.try_commit(message, env)


def _last(repo: Repo) -> dict[str, object]:
    recs = [json.loads(p.read_text()) for p in (repo.state / "runs").glob("*/run.json")]
    return max(recs, key=lambda r: float(str(r["started"])))


def wait_for_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def wait_for(cond: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
