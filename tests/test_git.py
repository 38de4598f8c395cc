"""mdspec/git.py against real repositories: commits through git, notes with mdspec's message, object format."""

from __future__ import annotations

import subprocess

from conftest import FOREGROUND, Repo
from runhelpers import last_run, spec_commit

from mdspec.git import Identity
from mdspec.git import Repo as GitRepo

ADA = Identity("Ada Lovelace", "ada@example.com")


def test_create_commit_keeps_message_and_identities(repo: Repo) -> None:
    g = GitRepo(repo.top)
    msg = "mdspec: grüße\n\nbody line\n\nMdspec-Run: r1\n"
    sha = g.create_commit(g.tree_of(repo.head()), repo.head(), msg, Identity("Ada (mdspec)", ADA.email), ADA)
    assert repo.git("cat-file", "commit", sha).split("\n\n", 1)[1] == msg
    assert repo.git("log", "-1", "--format=%an|%ae|%cn|%ce|%P", sha).strip() == \
        f"Ada (mdspec)|{ADA.email}|{ADA.name}|{ADA.email}|{repo.head()}"
    assert "gpgsig" not in repo.git("cat-file", "commit", sha)


def test_object_format_names(repo: Repo) -> None:
    g = GitRepo(repo.top)
    assert g.object_format == "sha1"
    assert g.empty_tree == subprocess.run(["git", "hash-object", "-t", "tree", "/dev/null"], cwd=repo.top,
                                          capture_output=True, text=True, check=True).stdout.strip()
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
        "mdspec: note for run c", "mdspec: note for run b", "mdspec: note for run a"]
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
    assert repo.git("log", "-1", f"--format={fmt}", "--date=raw", rebased) == \
        repo.git("log", "-1", f"--format={fmt}", "--date=raw", result)
    assert "1700000000 -0330" in repo.git("log", "-1", "--format=%ad", "--date=raw", rebased)
    assert repo.git("log", "-1", "--format=%cn|%P", rebased).strip() == f"Grace Hopper|{tip}"
    assert "gpgsig" not in repo.git("cat-file", "commit", rebased)
