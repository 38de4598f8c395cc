"""mdspec/git.py against real repositories: commits through git, notes with mdspec's message, object format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import last_run, spec_commit

from mdspec import git
from mdspec.git import Identity
from mdspec.git import Repo as GitRepo

ADA = Identity("Ada Lovelace", "ada@example.com")


def test_create_commit_keeps_message_and_identities(repo: Repo) -> None:
    g = GitRepo(repo.top)
    msg = "mdspec: grüße\n\nbody line\n\nMdspec-Run: r1\n"
    sha = g.create_commit(g.tree_of(repo.head()), repo.head(), msg, Identity("Ada (mdspec)", ADA.email), ADA)
    assert repo.git("cat-file", "commit", sha).split("\n\n", 1)[1] == msg
    assert (
        repo.git("log", "-1", "--format=%an|%ae|%cn|%ce|%P", sha).strip()
        == f"Ada (mdspec)|{ADA.email}|{ADA.name}|{ADA.email}|{repo.head()}"
    )
    assert "gpgsig" not in repo.git("cat-file", "commit", sha)


def test_object_format_names(repo: Repo) -> None:
    g = GitRepo(repo.top)
    assert g.object_format == "sha1"
    assert (
        g.empty_tree
        == subprocess.run(
            ["git", "hash-object", "-t", "tree", "/dev/null"], cwd=repo.top, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    assert g.zero_oid == "0" * len(repo.head())
    assert g.update_ref("refs/heads/new", repo.head(), None, "test")  # create: old is the zero name
    assert not g.update_ref("refs/heads/new", repo.head(), None, "test")  # exists: the swap fails


def test_note_commit_has_mdspecs_message(mdrepo: Repo) -> None:
    spec_commit(mdrepo, env=FOREGROUND)
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert f"mdspec run {rec['id']}" in mdrepo.git("notes", "--ref=mdspec", "show", "HEAD")
    assert mdrepo.git("log", "-1", "--format=%B", "refs/notes/mdspec").strip() == f"mdspec: note for run {rec['id']}"
    assert "libgit2" not in mdrepo.git("log", "--format=%B", "refs/notes/mdspec")


def test_notes_keep_their_history(repo: Repo) -> None:
    g = GitRepo(repo.top)
    first = repo.head()
    second = repo.commit("second", {"b.txt": "b\n"})
    g.add_note(first, "one\n", "refs/notes/mdspec", ADA, "mdspec: note for run a")
    g.add_note(second, "two\n", "refs/notes/mdspec", ADA, "mdspec: note for run b")
    g.add_note(second, "two again\n", "refs/notes/mdspec", ADA, "mdspec: note for run c")
    assert repo.git("log", "--format=%s", "refs/notes/mdspec").splitlines() == [
        "mdspec: note for run c",
        "mdspec: note for run b",
        "mdspec: note for run a",
    ]
    assert repo.git("notes", "--ref=mdspec", "show", first) == "one\n"
    assert repo.git("notes", "--ref=mdspec", "show", second) == "two again\n"
    assert repo.git("log", "-1", "--format=%an <%ae>", "refs/notes/mdspec").strip() == f"{ADA.name} <{ADA.email}>"


def test_rebase_commit_keeps_author_and_date_unsigned(repo: Repo) -> None:
    base = repo.head()
    old = {"GIT_AUTHOR_DATE": "@1700000000 -0330", "GIT_AUTHOR_NAME": "Ada Lovelace (mdspec)"}
    result = repo.commit("mdspec: add a", {"a.txt": "a\n"}, env=old)
    repo.git("reset", "-q", "--hard", base)
    tip = repo.commit("meanwhile", {"b.txt": "b\n"})
    g = GitRepo(repo.top)
    rebased = g.rebase_commit(result, tip, Identity("Grace Hopper", "grace@example.com"))
    assert rebased is not None
    fmt = "%an|%ae|%ad|%B"
    assert repo.git("log", "-1", f"--format={fmt}", "--date=raw", rebased) == repo.git(
        "log", "-1", f"--format={fmt}", "--date=raw", result
    )
    assert "1700000000 -0330" in repo.git("log", "-1", "--format=%ad", "--date=raw", rebased)
    assert repo.git("log", "-1", "--format=%cn|%P", rebased).strip() == f"Grace Hopper|{tip}"
    assert "gpgsig" not in repo.git("cat-file", "commit", rebased)


def test_hook_variables_are_dropped_and_remote_settings_kept(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    subprocess.run(["git", "init", "-q", str(decoy)], check=True)
    (decoy / "decoy.txt").write_text("decoy\n")
    subprocess.run(["git", "add", "decoy.txt"], cwd=decoy, check=True)
    # What git exports into a hook (aimed at another repository here), plus `git -c` style configuration.
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(decoy / ".git" / "index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Hook Author")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "mdspec.probe")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "seen")
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env = git.clean_env()
    assert {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_AUTHOR_NAME"}.isdisjoint(env)
    assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes"
    assert git.run(["config", "--get", "mdspec.probe"], repo.top).stdout.strip() == "seen"
    top = Path(git.run(["rev-parse", "--show-toplevel"], repo.top).stdout.strip())
    assert top.resolve() == repo.top.resolve()
    files = git.run(["ls-files"], repo.top).stdout.split()
    assert "decoy.txt" not in files
    assert files  # the repository's own index, not the hook's


def test_a_child_of_a_real_hook_sees_the_config_not_the_hooks_index(repo: Repo, tmp_path: Path) -> None:
    """A real post-commit hook: git itself exports GIT_INDEX_FILE (and GIT_DIR here, set on the command)."""
    out = tmp_path / "seen.txt"
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "other.txt").write_text("x\n")
    subprocess.run(["git", "add", "other.txt"], cwd=other, check=True)
    subprocess.run(
        ["git", "-c", "user.name=O", "-c", "user.email=o@example.com", "commit", "-qm", "other"], cwd=other, check=True
    )
    script = (
        f"from pathlib import Path\nimport os\nfrom mdspec import git\n"
        f"p = Path({str(other)!r})\n"
        f"seen = [os.environ.get('GIT_INDEX_FILE', ''),\n"
        f"        git.run(['config', '--get', 'mdspec.probe'], p).stdout.strip(),\n"
        f"        ' '.join(git.run(['ls-files'], p).stdout.split())]\n"
        f"Path({str(out)!r}).write_text('\\n'.join(seen))\n"
    )
    hook = repo.top / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f'#!/bin/sh\nexec {sys.executable} -c "$MDSPEC_PROBE"\n')
    hook.chmod(0o755)
    (repo.top / "a.txt").write_text("a\n")
    env = {
        **os.environ,
        "MDSPEC_PROBE": script,
        "GIT_DIR": str(repo.top / ".git"),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "mdspec.probe",
        "GIT_CONFIG_VALUE_0": "seen",
    }
    subprocess.run(["git", "add", "a.txt"], cwd=repo.top, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "a"], cwd=repo.top, env=env, check=True)
    hook_index, value, files = out.read_text().split("\n")
    assert hook_index  # git did export its index into the hook
    assert value == "seen"
    assert files == "other.txt"  # the other repository's own index, not the committing one's
