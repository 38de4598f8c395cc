"""SHA-256 repositories (`git init --object-format=sha256`).

pygit2 (libgit2 1.9) cannot open them, so mdspec refuses in one line everywhere — every command, and the
post-commit hook before it queues anything — and no part of mdspec assumes 40-character object names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Repo, make_repo

from mdspec.fast import triggers
from mdspec.fast.hook import READABLE_SHA_LENGTHS
from mdspec.run import pending


def sha256_repo(path: Path) -> Repo:
    return make_repo(path, "--object-format=sha256")


@pytest.fixture
def s256(tmp_path: Path) -> Repo:
    r = sha256_repo(tmp_path / "repo")
    assert len(r.head()) == 64
    return r


def _one_line_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mdspec: error: "), lines[0]
    assert "SHA-256" in lines[0], lines[0]
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["init"],
        ["init", "--git-hook"],
        ["doctor"],
        ["status"],
        ["log"],
        ["run"],
        ["run", "--foreground"],
        ["apply"],
        ["revert"],
        ["worker"],
    ],
)
def test_every_command_refuses_in_one_line(s256: Repo, args: list[str]) -> None:
    files = sorted(p.name for p in s256.top.iterdir())
    _one_line_refusal(s256.mdspec(*args, check=False))
    assert sorted(p.name for p in s256.top.iterdir()) == files  # init wrote nothing
    assert not s256.state.exists()
    assert not (s256.top / ".git" / "hooks" / "post-commit").exists()


def test_the_real_hook_refuses_before_queueing(s256: Repo) -> None:
    hook = s256.top / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m mdspec hook post-commit\n")
    hook.chmod(0o755)
    s256.write(".mdspec.toml", '[agent]\nbackend = "command"\ncommand = "true"\n')
    s256.commit("set up by hand", env={"MDSPEC_RUNNING": "1"})
    # A commit changing no watched path: silent, as in any repository.
    s256.commit("code", {"src/a.py": "a = 1\n"})
    assert "mdspec" not in s256.last_output
    sha = s256.commit("spec: app", {"spec/app.md": "# App\n"})
    lines = [ln for ln in s256.last_output.splitlines() if "mdspec" in ln]
    assert len(lines) == 1, s256.last_output
    assert lines[0].startswith("mdspec: error: "), s256.last_output
    assert "SHA-256" in lines[0], s256.last_output
    assert sha[:10] in lines[0]
    assert "Traceback" not in s256.last_output
    assert s256.head() == sha
    assert triggers.entries(str(s256.state)) == []
    assert not (s256.state / "worker.log").exists()
    assert not (s256.state / "runs").exists()


def test_queue_and_revert_parsing_take_sha256_names(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    long, short = "ab" * 32, "cd" * 20
    triggers.enqueue(state, long, "refs/heads/main")
    triggers.enqueue(state, short, "refs/heads/main")
    assert sorted(sha for sha, _, _ in triggers.entries(state)) == sorted([long, short])
    msg = f"Revert x\n\nThis reverts commit {long}.\nThis reverts commit {short}.\n"
    assert [m.group(1) for m in pending._REVERTS.finditer(msg)] == [long, short]
    # The hook reads what the worker can open: SHA-1 only, for now.
    assert READABLE_SHA_LENGTHS == (40,)


def test_no_fixed_sha1_length_in_the_code() -> None:
    """A guard for the grep this was made with: hash lengths come from the object format."""
    src = Path(__file__).resolve().parent.parent / "mdspec"
    offenders = []
    for p in sorted(src.glob("*.py")):
        for n, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if (
                ("{40}" in code and "{64}" not in code)
                or '"0" * 40' in code
                or "[:40]" in code
                or "4b825dc642cb6eb9a060e54bf8d69288fbee4904" in code
            ):
                offenders.append(f"{p.name}:{n}: {line.strip()}")
    assert offenders == []
    assert os.path.isdir(src)
