"""The in-memory parts of a run's last steps, against git doing the same: tree comparison, the split index
of mdspec's own worktree, notes written in process."""

from __future__ import annotations

import os
import subprocess

from conftest import Repo

from mdspec.git import Identity
from mdspec.git import Repo as GitRepo
from mdspec.run import worktree

ADA = Identity("Ada Lovelace", "ada@example.com")


def _diff_tree(repo: Repo, old: str, new: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["git", "diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new],
        cwd=repo.top,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    parts = out.split("\0")
    # git's "T" (a file became a symlink) is a change like any other for mdspec: "M".
    return [(parts[i].replace("T", "M"), parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def test_changed_paths_agree_with_diff_tree(repo: Repo) -> None:
    top = repo.top
    for rel in ("was_file", "was_link", "dir/a", "dir/b", "keep/x", "gone.txt"):
        repo.write(rel, rel + "\n")
    (top / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name\n")
    old = repo.commit("before")
    (top / "was_file").unlink()
    repo.write("was_file/inside", "now a directory\n")  # a file that became a directory
    (top / "dir" / "a").unlink()
    (top / "dir" / "b").unlink()
    (top / "dir").rmdir()
    repo.write("dir", "now a file\n")  # and the other way round
    (top / "was_link").unlink()
    (top / "was_link").symlink_to("keep/x")  # a type change
    (top / "gone.txt").unlink()
    (top / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"changed\n")
    repo.write("new/deep/file", "added\n")
    new = repo.commit("after")
    g = GitRepo(top)
    expected = _diff_tree(repo, old, new)
    assert len(expected) == 9
    assert g.changed_paths(old, new) == expected
    assert g.changed_paths(new, old) == _diff_tree(repo, new, old)
    assert worktree.changed_between(top, old, g.tree_of(new)) == expected  # a tree as well as a commit
    assert g.changed_paths(old, old) == []


def test_own_worktree_keeps_a_split_index_and_the_users_config_is_untouched(repo: Repo) -> None:
    repo.commit("one", {"a.txt": "a\n"})
    config_before = (repo.top / ".git" / "config").read_bytes()
    g = GitRepo(repo.top)
    wt = worktree.prepare(g, g.state_dir, repo.head())
    wt = worktree.prepare(g, g.state_dir, repo.head())  # reused: reset with mdspec's own checkout
    (wt / "b.txt").write_text("b\n")
    tree = worktree.snapshot_tree(wt)
    own_git_dir = repo.top / ".git" / "worktrees" / wt.name
    assert list(own_git_dir.glob("sharedindex.*")), "mdspec's worktree writes a split index"
    assert not list((repo.top / ".git").glob("sharedindex.*")), "the user's index is never split"
    assert (repo.top / ".git" / "config").read_bytes() == config_before
    assert "splitindex" not in repo.git("config", "--list").lower()
    committed = repo.git("ls-tree", "--name-only", "HEAD").split()
    assert repo.git("ls-tree", "--name-only", tree).split() == sorted([*committed, "b.txt"])
    # git itself reads the split index: the agent's own git commands work as ever.
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=wt, capture_output=True, text=True, check=True).stdout
        == "A  b.txt\n"
    )


def test_note_text_is_kept_as_git_notes_add_keeps_it(repo: Repo) -> None:
    first = repo.commit("one", {"a.txt": "a\n"})
    second = repo.commit("two", {"a.txt": "b\n"})
    text = "\n\nline with spaces   \n\n\n\n  indented\nlast\n\n"
    repo.git("notes", "--ref=by-git", "add", "-m", text, first)
    GitRepo(repo.top).add_note(second, text, "refs/notes/mdspec", ADA, "mdspec: note for run r")
    assert repo.git("notes", "--ref=mdspec", "show", second) == repo.git("notes", "--ref=by-git", "show", first)
    assert repo.git("for-each-ref", "refs/mdspec/") == ""  # the draft ref is gone
    assert repo.git("log", "--format=%s%n%an", "refs/notes/mdspec").split("\n")[:2] == [
        "mdspec: note for run r",
        ADA.name,
    ]
