"""The persistent worktree (mdspec/worktree.py): reused, reset per run, caches kept, repaired when broken."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import QUIET, assert_next_run_lands, last_run, run_fg, set_agent, spec_commit

from mdspec.git import Repo as GitRepo
from mdspec.run import worktree

CACHING_AGENT = """
import os, pathlib, time
cache = pathlib.Path("build/cache.bin")
seen = cache.read_text() if cache.exists() else "none"
cache.parent.mkdir(exist_ok=True)
cache.write_text(f"cache {time.time_ns()}\\n")
pathlib.Path("seen.txt").write_text(f"cache seen at start: {seen}\\n")
pathlib.Path("leftover.tmp").write_text("x\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Record the cache\\n")
"""


def wt_git(wt: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=wt, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def g(mdrepo: Repo) -> GitRepo:
    mdrepo.commit("ignore build", {".gitignore": "build/\n", "app.py": "app\n"}, env=QUIET)
    return GitRepo(mdrepo.top)


def test_prepare_resets_tracked_removes_untracked_keeps_ignored(mdrepo: Repo, g: GitRepo) -> None:
    base = mdrepo.head()
    wt = worktree.prepare(g, mdrepo.state, base)
    assert wt == mdrepo.state / "worktree"
    assert wt_git(wt, "rev-parse", "HEAD").strip() == base
    # Leave every kind of mess a run can leave.
    (wt / "app.py").write_text("changed\n")
    (wt / "untracked.txt").write_text("x\n")
    (wt / "newdir").mkdir()
    (wt / "newdir" / "f.txt").write_text("x\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.bin").write_text("warm\n")
    (wt / "staged.txt").write_text("s\n")
    wt_git(wt, "add", "staged.txt")
    (wt / "README.md").unlink()
    wt_git(wt, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qam", "agent commit")
    inode = (wt / ".git").stat().st_ino
    assert worktree.prepare(g, mdrepo.state, base) == wt
    assert (wt / ".git").stat().st_ino == inode  # reused, not recreated
    assert wt_git(wt, "rev-parse", "HEAD").strip() == base
    assert wt_git(wt, "status", "--porcelain") == ""
    assert (wt / "app.py").read_text() == "app\n"
    assert (wt / "README.md").exists()
    assert not (wt / "untracked.txt").exists()
    assert not (wt / "newdir").exists()
    assert not (wt / "staged.txt").exists()
    assert (wt / "build" / "cache.bin").read_text() == "warm\n"
    # The user's checkout and branch are untouched by all of this.
    assert mdrepo.head() == base
    assert mdrepo.status() == ""
    assert mdrepo.git("symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_prepare_clears_a_half_done_rebase(mdrepo: Repo, g: GitRepo) -> None:
    base = mdrepo.head()
    wt = worktree.prepare(g, mdrepo.state, base)
    ident = ["-c", "user.name=a", "-c", "user.email=a@b"]
    (wt / "app.py").write_text("one\n")
    wt_git(wt, *ident, "commit", "-qam", "one")
    wt_git(wt, "checkout", "-q", base)
    (wt / "app.py").write_text("two\n")
    wt_git(wt, *ident, "commit", "-qam", "two")
    subprocess.run(["git", *ident, "rebase", "HEAD@{2}"], cwd=wt, capture_output=True)  # stops on a conflict
    wt_gitdir = Path(wt_git(wt, "rev-parse", "--absolute-git-dir").strip())
    assert (wt_gitdir / "rebase-merge").exists() or (wt_gitdir / "rebase-apply").exists()
    worktree.prepare(g, mdrepo.state, base)
    assert not (wt_gitdir / "rebase-merge").exists()
    assert not (wt_gitdir / "rebase-apply").exists()
    assert wt_git(wt, "status", "--porcelain") == ""
    assert wt_git(wt, "rev-parse", "HEAD").strip() == base


def test_worktree_is_reused_and_ignored_cache_kept_across_runs(mdrepo: Repo, g: GitRepo, tmp_path: Path) -> None:
    set_agent(tmp_path, CACHING_AGENT)
    spec_commit(mdrepo, "# A\n", "spec/a.md", env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    assert (mdrepo.top / "seen.txt").read_text() == "cache seen at start: none\n"
    assert not (mdrepo.top / "build").exists()  # ignored: never committed
    wt = mdrepo.state / "worktree"
    cache = (wt / "build" / "cache.bin").read_text()
    (wt / "stray.txt").write_text("left by something after the run\n")
    spec_commit(mdrepo, "# B\n", "spec/b.md", env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    assert (mdrepo.top / "seen.txt").read_text() == f"cache seen at start: {cache}\n"
    assert not (mdrepo.top / "stray.txt").exists()  # removed before the run, so not committed
    assert mdrepo.git("worktree", "list").count("\n") == 2


@pytest.mark.parametrize("damage", ["deleted", "bad-gitfile", "admin-dir-gone", "replaced-by-file"])
def test_broken_worktree_is_recreated(mdrepo: Repo, g: GitRepo, tmp_path: Path, damage: str) -> None:
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head())
    if damage == "deleted":
        shutil.rmtree(wt)
    elif damage == "bad-gitfile":
        (wt / ".git").write_text("gitdir: /nowhere/at/all\n")
    elif damage == "admin-dir-gone":
        shutil.rmtree(mdrepo.top / ".git" / "worktrees")
    else:
        shutil.rmtree(wt)
        wt.write_text("not a directory\n")
    before = mdrepo.head()
    set_agent(tmp_path, CACHING_AGENT)
    spec_commit(mdrepo, "# A\n", "spec/a.md")
    assert run_fg(mdrepo).returncode == 0
    assert last_run(mdrepo)["status"] == "landed"
    assert mdrepo.head("HEAD~2") == before
    assert wt_git(wt, "rev-parse", "HEAD").strip() == mdrepo.head("HEAD~1")
    assert_next_run_lands(mdrepo, tmp_path)


def test_worktree_of_another_repository_is_replaced(mdrepo: Repo, g: GitRepo, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(other),
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    wt = worktree.path_for(mdrepo.state)
    wt.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "-C", str(other), "worktree", "add", "-q", "--detach", str(wt)], check=True)
    base = mdrepo.head()
    assert worktree.prepare(g, mdrepo.state, base) == wt
    assert wt_git(wt, "rev-parse", "HEAD").strip() == base


def _listed(mdrepo: Repo, wt: Path) -> str | None:
    """The `git worktree list --porcelain` stanza of `wt`, or None when git no longer knows it."""
    for stanza in mdrepo.git("worktree", "list", "--porcelain").split("\n\n"):
        if stanza.startswith(f"worktree {wt}\n"):
            return stanza
    return None


def test_worktree_is_locked_so_prune_keeps_it(mdrepo: Repo, g: GitRepo, tmp_path: Path) -> None:
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head()).resolve()
    stanza = _listed(mdrepo, wt)
    assert stanza is not None, stanza
    assert "\nlocked mdspec" in stanza, stanza
    line = next(ln for ln in mdrepo.git("worktree", "list").splitlines() if ln.startswith(f"{wt} "))
    assert line.endswith(" locked"), line
    # What a user's clean-up does: the directory goes, then git prunes (gc prunes the same way).
    shutil.rmtree(wt)
    mdrepo.git("worktree", "prune", "--expire=now")
    mdrepo.git("gc", "--quiet", "--prune=now")
    assert _listed(mdrepo, wt) is not None
    # The control: an unlocked worktree in the same state is pruned.
    other = tmp_path / "other-wt"
    mdrepo.git("worktree", "add", "--detach", str(other), "HEAD")
    shutil.rmtree(other)
    mdrepo.git("worktree", "prune", "--expire=now")
    assert _listed(mdrepo, other.resolve()) is None
    # mdspec recreates its worktree (still locked) and the next run lands.
    set_agent(tmp_path, CACHING_AGENT)
    spec_commit(mdrepo, "# A\n", "spec/a.md")
    assert run_fg(mdrepo).returncode == 0
    assert last_run(mdrepo)["status"] == "landed"
    stanza = _listed(mdrepo, wt)
    assert stanza is not None
    assert "\nlocked mdspec" in stanza


def test_an_unlocked_worktree_from_before_is_locked_on_reuse(mdrepo: Repo, g: GitRepo) -> None:
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head()).resolve()
    mdrepo.git("worktree", "unlock", str(wt))
    assert "\nlocked" not in (_listed(mdrepo, wt) or "")
    worktree.prepare(g, mdrepo.state, mdrepo.head())
    assert "\nlocked mdspec" in (_listed(mdrepo, wt) or "")


def test_prepare_leaves_the_branch_an_agent_made_and_clears_a_conflicted_merge(mdrepo: Repo, g: GitRepo) -> None:
    base = mdrepo.head()
    wt = worktree.prepare(g, mdrepo.state, base)
    ident = ["-c", "user.name=a", "-c", "user.email=a@b"]
    wt_git(wt, "checkout", "-q", "-b", "agent-side")
    (wt / "app.py").write_text("side\n")
    wt_git(wt, *ident, "commit", "-qam", "side")
    side = wt_git(wt, "rev-parse", "HEAD").strip()
    wt_git(wt, "checkout", "-q", "-b", "agent-work", base)
    (wt / "app.py").write_text("work\n")
    wt_git(wt, *ident, "commit", "-qam", "work")
    work = wt_git(wt, "rev-parse", "HEAD").strip()
    subprocess.run(["git", *ident, "merge", "agent-side"], cwd=wt, capture_output=True)  # stops on a conflict
    assert "UU app.py" in wt_git(wt, "status", "--porcelain")
    (wt / "README.md").unlink()
    worktree.prepare(g, mdrepo.state, base)
    assert wt_git(wt, "status", "--porcelain") == ""
    assert wt_git(wt, "ls-files", "--unmerged") == ""
    assert (wt / "app.py").read_text() == "app\n"
    assert (wt / "README.md").exists()
    assert wt_git(wt, "rev-parse", "HEAD").strip() == base
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=wt).returncode != 0  # detached
    # The agent's branches stay where the agent left them: a reset would have moved the checked-out one.
    assert wt_git(wt, "rev-parse", "agent-work").strip() == work
    assert wt_git(wt, "rev-parse", "agent-side").strip() == side


def test_snapshot_stages_what_git_add_all_would(mdrepo: Repo, g: GitRepo) -> None:
    base = mdrepo.head()
    wt = worktree.prepare(g, mdrepo.state, base)
    mdrepo.commit(
        "more files", {"dir/a.txt": "a\n", "dir/b.txt": "b\n", "tool.sh": "echo\n", "gone.txt": "g\n"}, env=QUIET
    )
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head())
    (wt / "app.py").write_text("changed\n")
    (wt / "gone.txt").unlink()
    (wt / "new.txt").write_text("new\n")
    (wt / "newdir" / "deep").mkdir(parents=True)
    (wt / "newdir" / "deep" / "f.txt").write_text("deep\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.bin").write_text("ignored\n")
    shutil.rmtree(wt / "dir")
    (wt / "dir").write_text("a file where a directory was\n")
    (wt / "README.md").unlink()
    (wt / "README.md").mkdir()
    (wt / "README.md" / "inside.txt").write_text("a directory where a file was\n")
    (wt / "tool.sh").chmod(0o755)
    (wt / "link").symlink_to("app.py")
    (wt / "staged.txt").write_text("staged, then changed\n")
    wt_git(wt, "add", "staged.txt")
    (wt / "staged.txt").write_text("changed after staging\n")
    found = dict((p, tag) for tag, p in worktree.changes(wt))
    assert found["new.txt"] == worktree.UNTRACKED
    assert found["app.py"] != worktree.UNTRACKED
    assert "build/cache.bin" not in found
    tree = worktree.snapshot_tree(wt)
    wt_git(wt, "add", "--all")  # git's own staging finds nothing left to add
    assert wt_git(wt, "write-tree").strip() == tree
    listing = wt_git(wt, "ls-tree", "-r", "--name-only", tree).split()
    assert {"new.txt", "newdir/deep/f.txt", "dir", "README.md/inside.txt", "link", "staged.txt"} <= set(listing)
    assert not {"gone.txt", "dir/a.txt", "README.md", "build/cache.bin"} & set(listing)
    assert "100755 blob" in wt_git(wt, "ls-tree", tree, "tool.sh")
    # Nothing changed since: the same tree again, from a scan that finds nothing.
    assert worktree.changes(wt) == []
    assert worktree.snapshot_tree(wt) == tree


def test_snapshot_of_a_nested_repository_is_staged_as_git_add_does(mdrepo: Repo, g: GitRepo) -> None:
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head())
    nested = wt / "vendor" / "lib"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "x.txt").write_text("x\n")
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "add", "x.txt"], cwd=nested, check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"], cwd=nested, check=True)
    (wt / "vendor" / "plain.txt").write_text("plain\n")
    assert ("?", "vendor/lib/") in worktree.changes(wt)
    tree = worktree.snapshot_tree(wt)
    wt_git(wt, "add", "--all")
    assert wt_git(wt, "write-tree").strip() == tree
    assert "160000 commit" in wt_git(wt, "ls-tree", "-r", tree, "vendor/lib")


def _as_paths(found: list[tuple[str, str]]) -> dict[str, bool]:
    """path -> untracked?, whatever letter each scan tags a changed file with."""
    return {p: tag == worktree.UNTRACKED for tag, p in found}


def test_the_cached_scan_finds_what_the_read_only_scan_finds(mdrepo: Repo, g: GitRepo) -> None:
    mdrepo.commit("a directory", {"dir/a.txt": "a\n", "README.md": "readme\n"}, env=QUIET)
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head())
    assert worktree.changes(wt) == []  # the untracked cache is made here, and used from now on
    (wt / "app.py").write_text("changed\n")
    (wt / "README.md").unlink()
    (wt / "dir" / "deeper").mkdir()
    (wt / "dir" / "deeper" / "new.txt").write_text("in a directory the cache has seen\n")
    (wt / "we\tird ✓.txt").write_text("an odd name\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.bin").write_text("ignored\n")
    (wt / "staged.txt").write_text("staged\n")
    wt_git(wt, "add", "staged.txt")
    found = worktree.changes(wt)
    assert _as_paths(found) == _as_paths(worktree._changes_read_only(wt))
    assert _as_paths(found) == {
        "app.py": False,
        "README.md": False,
        "dir/deeper/new.txt": True,
        "we\tird ✓.txt": True,
    }
    # A file made after a scan, in a directory the last scan cached, is found by the next one.
    (wt / "dir" / "later.txt").write_text("later\n")
    assert _as_paths(worktree.changes(wt))["dir/later.txt"] is True


def test_a_conflicted_file_is_a_change(mdrepo: Repo, g: GitRepo) -> None:
    wt = worktree.prepare(g, mdrepo.state, mdrepo.head())
    ident = ["-c", "user.name=a", "-c", "user.email=a@b"]
    wt_git(wt, *ident, "checkout", "-q", "-b", "side")
    (wt / "app.py").write_text("side\n")
    wt_git(wt, *ident, "commit", "-qam", "side")
    wt_git(wt, *ident, "checkout", "-q", "--detach", "HEAD~1")
    (wt / "app.py").write_text("here\n")
    wt_git(wt, *ident, "commit", "-qam", "here")
    merge = subprocess.run(["git", *ident, "merge", "side"], cwd=wt, capture_output=True, text=True)
    assert merge.returncode != 0  # a conflict: app.py is unmerged
    found = worktree.changes(wt)
    assert _as_paths(found) == {"app.py": False}
    assert _as_paths(found) == _as_paths(worktree._changes_read_only(wt))
