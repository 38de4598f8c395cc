"""mdspec/errors.py: one line on screen; the log keeps the traceback with versions, and a failed git's output."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from conftest import Repo

import mdspec
from mdspec import errors, git


def _boom() -> int:
    raise RuntimeError("a bug")


def test_crash_log_records_versions_and_platform(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.top)
    assert errors.run_guarded(_boom) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: a bug" in err
    log = (repo.top / ".git" / "mdspec" / "error.log").read_text()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"mdspec {mdspec.__version__}" in log
    assert git_version in log
    assert f"Python {platform.python_version()}" in log
    assert platform.platform() in log
    assert "RuntimeError: a bug" in log
    assert "Traceback" in log


def test_a_failed_git_is_one_line_on_screen_and_whole_in_the_log(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.top)
    # Pushing to a path that is no repository: git says so in several lines.
    args = ["push", "--porcelain", str(repo.top / "no-such-remote"), "HEAD:refs/heads/x"]

    def push() -> int:
        git.run(args, repo.top)
        return 0

    assert errors.run_guarded(push) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("mdspec: error: git push --porcelain")
    assert "error.log" in err
    log = (repo.top / ".git" / "mdspec" / "error.log").read_text()
    direct = subprocess.run(["git", *args], cwd=repo.top, capture_output=True, text=True)
    said = [ln for ln in (direct.stdout + direct.stderr).splitlines() if ln.strip()]
    assert len(said) > 1  # the test means something only if git said more than one line
    assert "command: git " + " ".join(args) in log
    for line in said:
        assert line in log
    assert f"mdspec {mdspec.__version__}" in log


def test_a_message_only_error_writes_no_log(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.top)

    def fail() -> int:
        raise errors.FatalError("the config is wrong: fix it")

    assert errors.run_guarded(fail) == 1
    assert capsys.readouterr().err == "mdspec: error: the config is wrong: fix it\n"
    assert not (repo.top / ".git" / "mdspec" / "error.log").exists()


def test_the_versions_line_names_this_python(repo: Repo) -> None:
    assert sys.executable in errors.versions()
