"""Finding the user's running git commands (mdspec/usergit.py), with real git processes held mid-way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Repo
from runhelpers import pid_gone, wait_for

from mdspec.run import usergit


@pytest.mark.parametrize(
    ("argv", "sub"),
    [
        (("git", "commit", "-m", "x"), "commit"),
        (("git", "-C", "/repo", "-c", "a.b=c", "--no-pager", "rebase", "-i"), "rebase"),
        (("/usr/bin/git", "--git-dir=/x/.git", "log"), "log"),
        (("git",), ""),
        (("git", "-C"), ""),
    ],
)
def test_subcommand_skips_global_options(argv: tuple[str, ...], sub: str) -> None:
    assert usergit.subcommand(argv) == sub


def _blocking_script(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A script that says it started, then waits for a release file; returns (started, release)."""
    started, release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
    script = tmp_path / f"{name}.sh"
    script.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        touch {started}
        while [ ! -e {release} ]; do sleep 0.02; done
    """)
    )
    script.chmod(0o755)
    return started, release


@pytest.fixture
def editing(repo: Repo, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `git commit` held open in its editor (like one whose hooks are still running)."""
    started, release = _blocking_script(tmp_path, "editor")
    repo.write("a.txt", "a\n")
    repo.git("add", "a.txt")
    env = {**os.environ, "GIT_EDITOR": str(tmp_path / "editor.sh")}
    proc = subprocess.Popen(
        ["git", "commit"], cwd=repo.top, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(started.exists, what="git commit to open its editor")
    yield proc
    release.touch()
    proc.wait(timeout=20)


def test_a_commit_in_progress_is_found_and_named(repo: Repo, editing: subprocess.Popen[bytes]) -> None:
    found = usergit.running(repo.top, repo.top / ".git")
    assert [p.pid for p in found] == [editing.pid]
    assert found[0].subcommand == "commit"
    assert found[0].describe() == f"`git commit` (pid {editing.pid})"


def test_a_commit_in_another_checkout_is_not_ours(repo: Repo, editing: subprocess.Popen[bytes], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert usergit.running(other, other / ".git") == []
    # Commands running inside the git dir (mdspec's own worktree lives there) are not the user's either.
    assert usergit.running(repo.top, repo.top) == []


def test_read_only_commands_do_not_count(repo: Repo) -> None:
    # A read-only git that stays up (as `git log` in a pager does, or an editor's `git cat-file --batch`).
    proc = subprocess.Popen(
        ["git", "cat-file", "--batch"], cwd=repo.top, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: any(p.pid == proc.pid for p in _all_git(repo)), what="git cat-file to start")
        assert usergit.running(repo.top, repo.top / ".git") == []
    finally:
        proc.communicate(b"", timeout=20)


def _all_git(repo: Repo) -> list[usergit.GitProcess]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and Path(f"/proc/{name}/comm").exists():
            try:
                if Path(f"/proc/{name}/comm").read_text().strip() == "git":
                    out.append(usergit.GitProcess(int(name), ()))
            except OSError:
                continue
    return out


def test_ancestor_git_is_the_command_running_our_hook(repo: Repo, tmp_path: Path) -> None:
    """A post-commit hook asks whether it runs inside a git command of that checkout: it does."""
    out = tmp_path / "found.txt"
    hook = repo.top / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        PYTHONPATH={Path(__file__).resolve().parent.parent} {sys.executable} -c '
        import os, pathlib
        from mdspec.run import usergit
        pid = usergit.ancestor_git(pathlib.Path(os.getcwd()))
        pathlib.Path("{out}").write_text(str(pid))
        '
    """)
    )
    hook.chmod(0o755)
    proc = subprocess.Popen(
        ["git", "commit", "--allow-empty", "-m", "x"],
        cwd=repo.top,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.wait(timeout=30)
    assert out.read_text() == str(proc.pid)
    assert usergit.ancestor_git(repo.top) is None  # the test itself runs inside no git


def test_tagged_finds_processes_by_their_landing_variable(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"], env={**os.environ, usergit.LANDING_VAR: "run-1"})
    try:
        wait_for(lambda: usergit.tagged("run-1") == [proc.pid], what="the tagged process")
        assert usergit.tagged("run-2") == []
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: pid_gone(proc.pid), what="sleep to end")
    assert usergit.tagged("run-1") == []
