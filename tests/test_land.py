"""Landing and holding results (mdspec/land.py), and `mdspec apply`, while the user keeps working.

The agent waits on a flag file so the test can act in the user's checkout while the run is going on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import (
    QUIET,
    assert_next_run_lands,
    last_run,
    run_fg,
    runs,
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)

from mdspec.fast import trailers
from mdspec.git import Repo as GitRepo
from mdspec.run import land

APP = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\n"

BLOCKING_AGENT = """
import os, pathlib, time
pathlib.Path({started!r}).write_text("started")
deadline = time.time() + 20
while not pathlib.Path({flag!r}).exists() and time.time() < deadline:
    time.sleep(0.02)
app = pathlib.Path("app.py")
app.write_text(app.read_text().replace("line 1\\n", "line 1 by the agent\\n"))
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Change line 1\\n")
"""


class BlockedRun:
    """A foreground `mdspec run` whose agent waits until `release()`."""

    def __init__(self, repo: Repo, tmp_path: Path) -> None:
        self.started = tmp_path / "started"
        self.flag = tmp_path / "go"
        set_agent(tmp_path, BLOCKING_AGENT.format(started=str(self.started), flag=str(self.flag)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mdspec", "run", "--foreground"],
            cwd=repo.top,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(self.started.exists, what="the agent to start")

    def release(self) -> str:
        self.flag.write_text("go")
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out


@pytest.fixture
def app_repo(mdrepo: Repo) -> Repo:
    mdrepo.commit("add app", {"app.py": APP}, env=QUIET)
    spec_commit(mdrepo)
    return mdrepo


def test_clean_fast_forward_keeps_unrelated_edits(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.write("notes.txt", "my scratch notes\n")  # untracked
    app_repo.write("README.md", "# project\nedited, not staged\n")  # dirty, not touched by the run
    run.release()
    rec = last_run(app_repo)
    assert rec["status"] == "landed"
    assert rec["reason"] == "fast-forward"
    assert (app_repo.top / "app.py").read_text().startswith("line 1 by the agent\n")
    assert (app_repo.top / "notes.txt").read_text() == "my scratch notes\n"
    assert (app_repo.top / "README.md").read_text() == "# project\nedited, not staged\n"
    assert app_repo.status() == " M README.md\n?? notes.txt\n"
    assert "mdspec: " + rec["id"] in app_repo.git("reflog", "-1", "main")


def test_user_edits_the_file_the_run_changes(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.write("app.py", APP + "line 7 by the user\n")
    before = user_state(app_repo)
    run.release()
    assert user_state(app_repo) == before  # nothing of the user's touched
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert rec["reason"].startswith("your uncommitted changes touch files the run changed: app.py; ")
    assert "mdspec apply" in rec["reason"]
    result = app_repo.git("rev-parse", f"refs/mdspec/results/{rec['id']}").strip()
    status = app_repo.mdspec("status").stdout
    assert "held" in status
    assert "app.py" in status
    # Still dirty: apply refuses and says why, still nothing lost.
    proc = app_repo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert "held" in proc.stdout
    assert "app.py" in proc.stdout
    assert user_state(app_repo) == before
    assert last_run(app_repo)["status"] == "held"
    # The user stashes the edit: apply lands the result, and the edit comes back on top.
    app_repo.git("stash")
    assert app_repo.mdspec("apply", rec["id"][:17]).returncode == 0
    assert app_repo.head() == result
    assert not app_repo.git("for-each-ref", "refs/mdspec/results/")
    app_repo.git("stash", "pop")
    assert (app_repo.top / "app.py").read_text() == APP.replace("line 1\n", "line 1 by the agent\n") + (
        "line 7 by the user\n"
    )
    rec = last_run(app_repo)
    assert rec["status"] == "landed"
    assert rec["landed_as"] == result
    assert "nothing: every spec commit" in app_repo.mdspec("status").stdout
    assert_next_run_lands(app_repo, tmp_path)


def test_user_commits_their_edit_then_applies(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.write("app.py", APP + "line 7 by the user\n")
    run.release()
    assert last_run(app_repo)["status"] == "held"
    user = app_repo.commit("user: line 7")
    assert app_repo.mdspec("apply").returncode == 0
    rec = last_run(app_repo)
    assert rec["status"] == "landed"
    assert rec["reason"].startswith("rebased onto")
    assert app_repo.head("HEAD~1") == user
    assert (app_repo.top / "app.py").read_text() == APP.replace("line 1\n", "line 1 by the agent\n") + (
        "line 7 by the user\n"
    )
    assert app_repo.status() == ""


def _held_then_user_commits(app_repo: Repo, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The dead end of old: held for an uncommitted edit, then the user commits that edit (as told)."""
    run = BlockedRun(app_repo, tmp_path)
    app_repo.write("app.py", APP.replace("line 1\n", "line 1 by the user\n"))
    run.release()
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert "app.py" in rec["reason"]
    user = app_repo.commit("user: line 1")
    return rec, user


def test_apply_after_the_user_committed_the_blocking_edit_merges_with_git(app_repo: Repo, tmp_path: Path) -> None:
    rec, user = _held_then_user_commits(app_repo, tmp_path)
    proc = app_repo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert "CONFLICT (content): Merge conflict in app.py" in proc.stdout
    assert "git cherry-pick --continue" in proc.stdout
    # git's own conflict state: markers in the file, CHERRY_PICK_HEAD, the branch not moved yet.
    assert "<<<<<<<" in (app_repo.top / "app.py").read_text()
    assert (app_repo.top / ".git" / "CHERRY_PICK_HEAD").exists()
    assert app_repo.head() == user
    again = app_repo.mdspec("apply", check=False)
    assert again.returncode == 1
    assert "being merged by `git cherry-pick`" in again.stderr
    app_repo.write("app.py", APP.replace("line 1\n", "line 1 by both\n"))
    app_repo.git("add", "app.py")
    app_repo.git("cherry-pick", "--continue", env={"GIT_EDITOR": "true"})
    assert app_repo.head("HEAD~1") == user
    msg = app_repo.message()
    assert trailers.values(msg, trailers.RUN) == [rec["id"]]
    assert trailers.values(msg, trailers.IMPLEMENTS) == rec["spec_commits"]
    status = app_repo.mdspec("status").stdout
    assert "nothing: every spec commit" in status
    done = last_run(app_repo)
    assert done["status"] == "landed"
    assert done["landed_as"] == app_repo.head()
    assert not app_repo.git("for-each-ref", "refs/mdspec/results/").strip()


def test_apply_merge_aborted_by_the_user_stays_held(app_repo: Repo, tmp_path: Path) -> None:
    rec, _ = _held_then_user_commits(app_repo, tmp_path)
    before = user_state(app_repo)
    assert app_repo.mdspec("apply", check=False).returncode == 1
    app_repo.git("cherry-pick", "--abort")
    assert user_state(app_repo) == before
    assert f"`mdspec apply {rec['id']}` tries again" in app_repo.mdspec("status").stdout
    held = last_run(app_repo)
    assert held["status"] == "held"
    assert not held.get("merging")
    assert app_repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]


def test_apply_merges_cleanly_when_the_edits_do_not_overlap(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.write("app.py", APP.replace("line 1\n", "line 1 by the user\n"))
    run.release()
    assert last_run(app_repo)["status"] == "held"
    # The user commits a different change after all; the held result now applies (in memory) as it is.
    app_repo.write("app.py", APP.replace("line 6\n", "line 6 by the user\n"))
    user = app_repo.commit("user: line 6")
    assert app_repo.mdspec("apply").returncode == 0
    assert app_repo.head("HEAD~1") == user
    assert (app_repo.top / "app.py").read_text() == APP.replace("line 1\n", "line 1 by the agent\n").replace(
        "line 6\n", "line 6 by the user\n"
    )
    assert app_repo.status() == ""


def test_user_switches_branch_while_running(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.git("switch", "-q", "-c", "topic")
    app_repo.write("topic.txt", "work on topic\n")
    before = user_state(app_repo)
    run.release()
    assert user_state(app_repo) == before
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert "main is not checked out (now topic)" in rec["reason"]
    assert "main is not checked out" in app_repo.mdspec("log").stdout
    # Applying from the wrong branch changes nothing.
    assert app_repo.mdspec("apply", check=False).returncode == 1
    assert user_state(app_repo) == before
    app_repo.git("switch", "-q", "main")
    assert app_repo.mdspec("apply").returncode == 0
    rec = last_run(app_repo)
    assert rec["status"] == "landed"
    assert rec["reason"] == "fast-forward"
    assert trailers.values(app_repo.message(), trailers.RUN) == [rec["id"]]
    assert (app_repo.top / "topic.txt").read_text() == "work on topic\n"  # untracked, carried along


def test_user_commits_on_the_branch_meanwhile_clean_rebase(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    spec = app_repo.head()
    user = app_repo.commit("user: more", {"app.py": APP + "line 7\n", "other.txt": "x\n"})
    app_repo.write("other.txt", "x\nuncommitted\n")
    run.release()
    rec = last_run(app_repo)
    assert rec["status"] == "landed"
    assert rec["reason"] == f"rebased onto {user[:10]}"
    assert app_repo.head("HEAD~1") == user
    assert rec["landed_as"] == app_repo.head() != rec["result"]
    assert app_repo.git("rev-parse", f"{rec['result']}~1").strip() == spec
    assert (app_repo.top / "app.py").read_text() == APP.replace("line 1\n", "line 1 by the agent\n") + "line 7\n"
    assert (app_repo.top / "other.txt").read_text() == "x\nuncommitted\n"
    assert app_repo.status() == " M other.txt\n"


def test_user_commits_a_conflicting_change_meanwhile_is_held(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    user = app_repo.commit("user: line 1", {"app.py": APP.replace("line 1\n", "line one\n")})
    before = user_state(app_repo)
    run.release()
    assert user_state(app_repo) == before
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert "conflicts with commits made on the branch since the run started" in rec["reason"]
    assert app_repo.head() == user
    assert app_repo.git("rev-parse", f"refs/mdspec/results/{rec['id']}").strip() == rec["result"]


def test_operation_in_progress_holds(app_repo: Repo, tmp_path: Path) -> None:
    run = BlockedRun(app_repo, tmp_path)
    app_repo.git("switch", "-q", "-c", "side")
    app_repo.commit("side: line 6", {"app.py": APP.replace("line 6\n", "side 6\n")})
    app_repo.git("switch", "-q", "main")
    app_repo.commit("main: line 6", {"app.py": APP.replace("line 6\n", "main 6\n")})
    app_repo.git("merge", "side", check=False)  # stops with a conflict
    assert (app_repo.top / ".git" / "MERGE_HEAD").exists()
    before = user_state(app_repo)
    run.release()
    assert user_state(app_repo) == before
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert "in progress" in rec["reason"]
    app_repo.git("merge", "--abort")
    assert app_repo.mdspec("apply").returncode == 0
    assert last_run(app_repo)["status"] == "landed"


def test_untracked_file_in_the_way_holds(app_repo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("new.txt").write_text("by the agent\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add new.txt\\n")
    """,
    )
    app_repo.write("new.txt", "the user's own\n")
    before = user_state(app_repo)
    assert run_fg(app_repo).returncode == 0
    assert user_state(app_repo) == before
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    assert "your uncommitted changes touch files the run changed: new.txt" in rec["reason"]
    (app_repo.top / "new.txt").unlink()
    assert app_repo.mdspec("apply").returncode == 0
    assert (app_repo.top / "new.txt").read_text() == "by the agent\n"


def test_staged_changes_are_kept(app_repo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("app.py").write_text("rewritten\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Rewrite app.py\\n")
    """,
    )
    app_repo.write("staged.txt", "staged by the user\n")
    app_repo.git("add", "staged.txt")
    assert run_fg(app_repo).returncode == 0
    assert last_run(app_repo)["status"] == "landed"
    assert app_repo.status() == "A  staged.txt\n"
    assert (app_repo.top / "app.py").read_text() == "rewritten\n"


def test_apply_without_a_held_result(app_repo: Repo) -> None:
    proc = app_repo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mdspec: error: no held result")
    assert "Traceback" not in proc.stderr


def test_apply_when_the_result_ref_is_deleted_uses_the_recorded_commit(app_repo: Repo, tmp_path: Path) -> None:
    app_repo.write("app.py", APP + "dirty\n")
    run = BlockedRun(app_repo, tmp_path)
    run.release()
    rec = last_run(app_repo)
    assert rec["status"] == "held"
    app_repo.git("update-ref", "-d", f"refs/mdspec/results/{rec['id']}")
    app_repo.git("checkout", "--", "app.py")
    assert app_repo.mdspec("apply").returncode == 0
    assert app_repo.head() == rec["result"]


def test_land_refuses_a_deleted_branch(app_repo: Repo) -> None:
    repo = GitRepo(app_repo.top)
    head = app_repo.head()
    landing = land.land(repo, "refs/heads/gone", head, "r1")
    assert not landing.landed
    assert "gone is not checked out" in landing.reason


def test_runs_for_branches_in_two_worktrees_each_land_in_their_own(mdrepo: Repo, tmp_path: Path) -> None:
    """One worker, started from a linked worktree, implements a spec commit of each branch: each result
    lands in the checkout that has its branch, never held as "not checked out"."""
    wt = tmp_path / "topic-wt"
    mdrepo.git("worktree", "add", "-q", "-b", "topic", str(wt))
    other = Repo(wt)
    on_main = spec_commit(mdrepo, "# Main\n", "spec/main.md")
    (mdrepo.state / "queue").mkdir(parents=True, exist_ok=True)
    (mdrepo.state / "queue" / on_main).write_text("refs/heads/main\n0\n")
    on_topic = other.commit("spec: topic", {"spec/topic.md": "# Topic\n"}, env=FOREGROUND)
    mdrepo.wait_landed()
    for checkout, spec, branch in ((mdrepo, on_main, "main"), (other, on_topic, "topic")):
        assert checkout.git("symbolic-ref", "--short", "HEAD").strip() == branch
        assert checkout.head("HEAD~1") == spec
        assert trailers.values(checkout.message(), trailers.IMPLEMENTS) == [spec]
        assert (checkout.top / "out.txt").read_text() == "implemented\n"
        assert checkout.status() == ""
    assert sorted((r["status"], r["branch"]) for r in runs(mdrepo)) == [
        ("landed", "refs/heads/main"),
        ("landed", "refs/heads/topic"),
    ]


def _result_changing(repo: Repo, tmp_path: Path, path: str, text: str) -> str:
    """A commit on HEAD that changes `path` to `text`, as a run's result would, made without touching
    the checkout or its index."""
    blob_file = tmp_path / "blob"
    blob_file.write_text(text)
    blob = repo.git("hash-object", "-w", str(blob_file)).strip()
    scratch = {"GIT_INDEX_FILE": str(tmp_path / "scratch-index")}
    repo.git("read-tree", "HEAD", env=scratch)
    repo.git("update-index", "--cacheinfo", f"100644,{blob},{path}", env=scratch)
    tree = repo.git("write-tree", env=scratch).strip()
    return repo.git("commit-tree", tree, "-p", "HEAD", "-m", "mdspec: a result").strip()


def test_a_refused_landing_touches_nothing_and_leaves_no_journal(app_repo: Repo, tmp_path: Path) -> None:
    """The checkout's own read-tree refuses before it writes a file: nothing to undo, and no journal
    left for recovery to act on."""
    result = _result_changing(app_repo, tmp_path, "app.py", APP.replace("line 1\n", "line 1 by the run\n"))
    head = app_repo.head()
    app_repo.write("app.py", APP + "line 7 by the user\n")
    index = app_repo.top / ".git" / "index"
    before, index_bytes = user_state(app_repo), index.read_bytes()
    landing = land.land(GitRepo(app_repo.top), "refs/heads/main", result, "r-refused")
    assert not landing.landed
    assert not landing.busy
    assert landing.reason == "your uncommitted changes touch files the run changed: app.py"
    assert user_state(app_repo) == before
    assert index.read_bytes() == index_bytes
    assert app_repo.head() == head
    state = app_repo.top / ".git" / "mdspec"
    assert not (state / land.JOURNAL).exists()
    assert not (state / "landing").exists()
    assert not (app_repo.top / ".git" / "index.lock").exists()


def test_an_entry_whose_stat_data_alone_is_stale_still_lands(app_repo: Repo, tmp_path: Path) -> None:
    """A file the result changes was touched (same content, new mtime): git's first look refuses it as
    not up to date; the landing refreshes and lands, as git's own checkout would."""
    new_text = APP.replace("line 1\n", "line 1 by the run\n")
    result = _result_changing(app_repo, tmp_path, "app.py", new_text)
    app_repo.write("README.md", "# project\nedited, not staged\n")
    app_py = app_repo.top / "app.py"
    later = app_py.stat().st_mtime_ns + 5 * 10**9
    os.utime(app_py, ns=(later, later))
    assert "app.py" in app_repo.git("diff-files", "--name-only")  # the index's stat data is stale
    landing = land.land(GitRepo(app_repo.top), "refs/heads/main", result, "r-stale")
    assert landing.landed, landing.reason
    assert app_repo.head() == result
    assert app_py.read_text() == new_text
    assert app_repo.status() == " M README.md\n"
    assert not (app_repo.top / ".git" / "mdspec" / land.JOURNAL).exists()
