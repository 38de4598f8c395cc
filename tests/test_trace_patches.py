"""Spec patches from one `git diff-tree --stdin`, against the hunks libgit2 makes for one commit."""

from __future__ import annotations

from conftest import Repo

from mdspec.git import Hunk
from mdspec.git import Repo as GitRepo
from mdspec.trace.patches import PatchStream, _prefix


def stream_hunks(repo: Repo, shas: list[str], watch: tuple[str, ...] = ("spec/**",)) -> dict[str, list[Hunk]]:
    g = GitRepo(repo.top)
    s = PatchStream(g, watch)
    for sha in shas:
        s.add(sha)
    return s.finish()


def test_lines_that_look_like_diff_headers_are_content(repo: Repo) -> None:
    first = repo.commit("spec", {"spec/a.md": "--- x\n+++ y\n@@ -1 +1 @@\nkeep\n"})
    second = repo.commit("spec", {"spec/a.md": "+++ z\nkeep\n-- dash\n"})
    found = stream_hunks(repo, [first, second])
    g = GitRepo(repo.top)
    for sha in (first, second):
        assert found[sha] == g.hunks(sha, ["spec/a.md"])
    removed = [t for h in found[second] for t in h.removed]
    assert removed == ["--- x", "+++ y", "@@ -1 +1 @@"]


def test_no_newline_at_end_quoted_names_unwatched_paths_and_binary_files(repo: Repo) -> None:
    repo.write('spec/odd "name".md', "one\ntwo")  # no newline at the end
    (repo.top / "spec/img.bin").write_bytes(b"\0\1\2")
    repo.write("src/code.py", "print(1)\n")
    sha = repo.commit("mixed")
    found = stream_hunks(repo, [sha])[sha]
    g = GitRepo(repo.top)
    assert found == g.hunks(sha, ['spec/odd "name".md', "spec/img.bin"])
    assert [(h.path, h.added) for h in found] == [('spec/odd "name".md', ("one", "two"))]


def test_a_commit_with_no_watched_change_has_no_hunks_and_order_is_kept(repo: Repo) -> None:
    code = repo.commit("code", {"src/x.py": "x = 1\n"})
    spec = repo.commit("spec", {"spec/a.md": "a\nb\nc\n"})
    edit = repo.commit("spec", {"spec/a.md": "a\nB\nc\nd\n"})
    found = stream_hunks(repo, [edit, code, spec])
    assert found[code] == []
    g = GitRepo(repo.top)
    assert found[edit] == g.hunks(edit, ["spec/a.md"])
    assert [(h.new_start, h.added, h.removed) for h in found[edit]] == [
        (2, ("B",), ("b",)),
        (4, ("d",), ()),
    ]


def test_the_pathspec_is_the_literal_part_of_each_glob() -> None:
    assert _prefix("spec/**") == "spec"
    assert _prefix("docs/*/spec.md") == "docs"
    assert _prefix("TASK.md") == "TASK.md"
    assert _prefix("**/*.md") == ""
