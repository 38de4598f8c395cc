"""Spec commits and the pending set (mdspec/pending.py): trailers, coalescing, reverts, the window."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo, agent_script
from runhelpers import (
    QUIET,
    last_run,
    run_fg,
    runs,
    set_agent,
    spec_commit,
    wait_for,
)

from mdspec import config
from mdspec.fast import trailers
from mdspec.git import Repo as GitRepo
from mdspec.run import pending

NEXT_FILE_AGENT = """
import os, pathlib
n = len(list(pathlib.Path(".").glob("gen-*.txt")))
pathlib.Path(f"gen-{n}.txt").write_text("generated\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text(f"Add gen-{n}.txt\\n")
"""


def find(repo: Repo) -> pending.PendingSet:
    g = GitRepo(repo.top)
    return pending.find(g, repo.head(), config.load(g.top))


def shas(specs: tuple[pending.SpecCommit, ...]) -> list[str]:
    return [s.sha for s in specs]


def fake_generated(repo: Repo, implements: list[str], files: dict[str, str] | None = None) -> str:
    """A generated commit made by hand: what a run commits, trailers and all."""
    msg = "mdspec: by hand\n\nbody\n\n" + trailers.render(implements, "run-by-hand", "skipped")
    for path, text in (files or {}).items():
        repo.write(path, text)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--allow-empty", "-m", msg, env=QUIET)
    return repo.head()


def test_spec_commits_and_implements_trailers_with_repeats(mdrepo: Repo) -> None:
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    mdrepo.commit("code only", {"src/x.py": "x = 1\n"}, env=QUIET)
    b = spec_commit(mdrepo, "task\n", "TASK.md")
    ps = find(mdrepo)
    assert shas(ps.pending) == [a, b]
    assert ps.pending[1].paths == ("TASK.md",)
    g = fake_generated(mdrepo, [a, b], {"gen.txt": "x\n"})
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [a, b]  # repeats kept
    ps = find(mdrepo)
    assert ps.pending == ()
    assert ps.reverted == ()
    assert ps.implemented == {a: g, b: g}
    c = spec_commit(mdrepo, "# C\n", "spec/c.md")
    assert shas(find(mdrepo).pending) == [c]


def test_generated_and_merge_commits_are_not_spec_commits(mdrepo: Repo) -> None:
    fake_generated(mdrepo, [], {"spec/sneaky.md": "x\n"})
    assert find(mdrepo).pending == ()
    mdrepo.git("switch", "-q", "-c", "side")
    side = spec_commit(mdrepo, "# side\n", "spec/side.md")
    mdrepo.git("switch", "-q", "main")
    mdrepo.git("merge", "-q", "--no-ff", "-m", "merge side", "side", env=QUIET)
    # First-parent history: the merge brings spec changes in, but it is no spec commit, and the side
    # branch's own commits are not on the first-parent line.
    assert side not in shas(find(mdrepo).pending)
    assert find(mdrepo).pending == ()


def test_setup_commit_bounds_the_window(repo: Repo, tmp_path: Path) -> None:
    repo.commit("old spec", {"spec/old.md": "# old\n"})
    repo.mdspec("init", "--git-hook")
    cmd = agent_script(tmp_path, NEXT_FILE_AGENT)
    repo.configure(f'[agent]\ncommand = "{cmd}"\n')
    repo.commit("set up mdspec", env=FOREGROUND)  # adds spec/README.md too, but starts no run
    assert "sets mdspec up" in repo.last_output
    assert not (repo.state / "runs").exists()
    assert find(repo).pending == ()
    assert "pending: nothing" in repo.mdspec("status").stdout
    assert "nothing pending" in run_fg(repo).stdout
    new = spec_commit(repo, "# new\n", "spec/new.md")
    assert shas(find(repo).pending) == [new]
    # A commit from before the window can still be named by hand.
    old = repo.head("HEAD~2")
    assert run_fg(repo, old).returncode == 0
    assert last_run(repo)["spec_commits"] == [old]


def test_two_spec_commits_coalesce_into_one_run(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    b = spec_commit(mdrepo, "# B\n", "spec/b.md")
    status = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert [p["commit"] for p in status["pending"]] == [a, b]
    assert run_fg(mdrepo).returncode == 0
    assert len(runs(mdrepo)) == 1
    rec = last_run(mdrepo)
    assert rec["spec_commits"] == [a, b]
    assert rec["status"] == "landed"
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [a, b]
    prompt = (mdrepo.state / "runs" / rec["id"] / "prompt.md").read_text()
    assert prompt.index(f"Spec commit 1 of 2: {a[:10]}") < prompt.index(f"Spec commit 2 of 2: {b[:10]}")
    assert "spec/a.md" in prompt
    assert "spec/b.md" in prompt
    assert find(mdrepo).pending == ()


def test_reverted_generated_commit_is_reported_not_run(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md", env=FOREGROUND)
    generated = mdrepo.head()
    assert mdrepo.head("HEAD~1") == a
    mdrepo.git("revert", "--no-edit", "HEAD", env=FOREGROUND)
    assert len(runs(mdrepo)) == 1
    ps = find(mdrepo)
    assert ps.pending == ()
    assert shas(ps.reverted) == [a]
    info = json.loads(mdrepo.mdspec("status", "--json").stdout)
    assert [p["commit"] for p in info["reverted"]] == [a]
    assert info["pending"] == []
    assert f"generated commit reverted; `mdspec run` implements it again): {a[:10]}" in mdrepo.mdspec("status").stdout
    # A new spec commit runs for itself only: the reverted one does not come along.
    b = spec_commit(mdrepo, "# B\n", "spec/b.md", env=FOREGROUND)
    assert last_run(mdrepo)["spec_commits"] == [b]
    assert shas(find(mdrepo).reverted) == [a]
    # By hand it runs again.
    assert run_fg(mdrepo).returncode == 0
    assert last_run(mdrepo)["spec_commits"] == [a]
    ps = find(mdrepo)
    assert ps.pending == ()
    assert ps.reverted == ()
    assert ps.implemented[a] not in (generated,)


def test_background_mdspec_run_implements_a_reverted_spec_commit(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md", env=FOREGROUND)
    mdrepo.git("revert", "--no-edit", "HEAD", env=QUIET)
    proc = mdrepo.mdspec("run")
    assert "in the background" in proc.stdout
    wait_for(lambda: len(runs(mdrepo)) == 2 and runs(mdrepo)[0]["status"] not in ("running",), what="the run")
    rec = last_run(mdrepo)
    assert rec["spec_commits"] == [a], rec
    assert rec["status"] == "landed", rec
    wait_for(lambda: not json.loads(mdrepo.mdspec("status", "--json").stdout)["worker_pid"], what="the worker")
    assert find(mdrepo).reverted == ()


def test_all_pending_is_oldest_first_across_pending_and_reverted(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    b = spec_commit(mdrepo, "# B\n", "spec/b.md")
    fake_generated(mdrepo, [b], {"gen-b.txt": "b\n"})
    mdrepo.git("revert", "--no-edit", "HEAD", env=QUIET)
    c = spec_commit(mdrepo, "# C\n", "spec/c.md")
    ps = find(mdrepo)
    assert shas(ps.pending) == [a, c]
    assert shas(ps.reverted) == [b]
    assert shas(ps.all_pending) == [a, b, c]
    assert run_fg(mdrepo).returncode == 0
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [a, b, c]


def test_run_with_a_non_spec_revision_is_refused(mdrepo: Repo) -> None:
    code = mdrepo.commit("code", {"src/x.py": "x\n"}, env=QUIET)
    proc = run_fg(mdrepo, "HEAD")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"mdspec: error: HEAD ({code[:10]}) is not a spec commit: it changes no watched path"
    proc = run_fg(mdrepo, "no-such-rev")
    assert proc.returncode == 1
    assert "'no-such-rev' does not name a commit" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- identity by content ----------------------------------------------------------------------------------

REWORD = {"GIT_SEQUENCE_EDITOR": "sed -i -e '1s/^pick/reword/'", "GIT_EDITOR": "sed -i -e '1s/^/reworded: /'", **QUIET}


def git_patch_id(repo: Repo, sha: str, *paths: str) -> str:
    """What git itself says the commit's patch-id is, on the given paths."""
    diff = repo.git("diff-tree", "-p", "--root", "--no-renames", sha, "--", *paths)
    proc = subprocess.run(
        ["git", "patch-id", "--stable"], cwd=repo.top, input=diff, capture_output=True, text=True, check=True
    )
    return proc.stdout.split()[0]


def test_patch_ids_are_gits_own_on_watched_paths_only(mdrepo: Repo) -> None:
    a = mdrepo.commit("spec and code", {"spec/a.md": "# A\n", "src/a.py": "a = 1\n"}, env=QUIET)
    b = spec_commit(mdrepo, "# B\n", "spec/b.md")
    g = GitRepo(mdrepo.top)
    ids = pending.patch_ids(g, [(a, ("spec/a.md",)), (b, ("spec/b.md",))])
    assert ids == {a: git_patch_id(mdrepo, a, "spec/a.md"), b: git_patch_id(mdrepo, b, "spec/b.md")}
    assert ids[a] != git_patch_id(mdrepo, a)  # the code in the same commit is not part of its identity
    assert pending.patch_ids(g, []) == {}


def test_patch_ids_in_several_batches_are_the_same(mdrepo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    b = spec_commit(mdrepo, "# B\n", "spec/b.md")
    g = GitRepo(mdrepo.top)
    changes = [(a, ("spec/a.md",)), (b, ("spec/b.md",))]
    together = pending.patch_ids(g, changes)
    monkeypatch.setattr(pending, "_MAX_PATHS", 1)  # one pathspec path a batch: two batches
    assert pending.patch_ids(g, changes) == together
    assert len(together) == 2


def test_a_run_records_each_spec_commits_patch_id(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    b = mdrepo.commit("task", {"TASK.md": "do it\n", "src/x.py": "x\n"}, env=QUIET)
    assert run_fg(mdrepo).returncode == 0
    msg = mdrepo.message()
    assert trailers.implements(msg) == [
        (a, git_patch_id(mdrepo, a, "spec/a.md")),
        (b, git_patch_id(mdrepo, b, "TASK.md")),
    ]


def test_old_generated_commits_match_by_the_spec_commits_content_while_it_exists(mdrepo: Repo, tmp_path: Path) -> None:
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    fake_generated(mdrepo, [a], {"gen.txt": "x\n"})  # sha only, as before patch-ids were recorded
    mdrepo.git("rebase", "-i", f"{a}~1", env=REWORD)
    assert mdrepo.head("HEAD~1") != a
    ps = find(mdrepo)
    assert ps.pending == ()
    assert ps.implemented[mdrepo.head("HEAD~1")] == mdrepo.head()
    # A fresh clone has no old spec commit to compare with: only a recorded patch-id survives there.
    clone = Repo(tmp_path / "clone")
    mdrepo.git("clone", "-q", "--no-local", f"file://{mdrepo.top}", str(clone.top))
    assert shas(find(clone).pending) == [mdrepo.head("HEAD~1")]


def test_a_reverted_generated_commit_reverts_the_rewritten_spec_commit(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, NEXT_FILE_AGENT)
    spec_commit(mdrepo, "# A\n", "spec/a.md", env=FOREGROUND)
    mdrepo.git("rebase", "-i", "HEAD~2", env=REWORD)
    moved = mdrepo.head("HEAD~1")
    mdrepo.git("revert", "--no-edit", "HEAD", env=QUIET)
    ps = find(mdrepo)
    assert ps.pending == ()
    assert shas(ps.reverted) == [moved]


def test_not_standing(mdrepo: Repo) -> None:
    g = GitRepo(mdrepo.top)
    cfg = config.load(mdrepo.top)
    a = spec_commit(mdrepo, "# A\n", "spec/a.md")
    code = mdrepo.commit("code", {"src/x.py": "x\n"}, env=QUIET)
    assert pending.not_standing(g, code, cfg, [a]) == []
    mdrepo.git("rebase", "-i", f"{a}~1", env=REWORD)  # reworded: the same change stands
    assert pending.not_standing(g, mdrepo.head(), cfg, [a]) == []
    mdrepo.git("reset", "-q", "--hard", f"{a}~1")
    b = spec_commit(mdrepo, "# A, amended\n", "spec/a.md")  # another change in its place
    assert pending.not_standing(g, b, cfg, [a, b]) == [a]
    mdrepo.git("reset", "-q", "--hard", f"{a}~1")  # dropped
    assert pending.not_standing(g, mdrepo.head(), cfg, [a]) == [a]
    assert pending.not_standing(g, mdrepo.head(), cfg, ["f" * len(a)]) == ["f" * len(a)]  # unknown


def test_a_generated_commit_merged_with_a_merge_commit_implements_its_spec_commit(mdrepo: Repo) -> None:
    # A pull request of `mdspec ci --pull-request`, merged with a merge commit rather than squashed: the
    # generated commit is on the branch only through the merge's second parent.
    spec = spec_commit(mdrepo, "# A\n", "spec/a.md")
    mdrepo.git("switch", "-q", "-c", f"mdspec/{spec[:10]}")
    generated = fake_generated(mdrepo, [spec], {"gen.txt": "x\n"})
    mdrepo.git("switch", "-q", "main")
    mdrepo.commit("code meanwhile", {"src/y.py": "y = 1\n"}, env=QUIET)
    mdrepo.git("merge", "-q", "--no-ff", "-m", "Merge pull request", f"mdspec/{spec[:10]}", env=QUIET)
    ps = find(mdrepo)
    assert shas(ps.pending) == []
    assert ps.implemented[spec] == generated
    # Reverting the merged-in generated commit gives the spec commit back, as for a linear one.
    mdrepo.git("revert", "--no-edit", generated, env=QUIET)
    assert shas(find(mdrepo).reverted) == [spec]
