"""The paths of landing recovery that a killed worker rarely takes, walked one at a time on real repositories.

test_recovery.py and test_landing_faults.py kill real workers at real stages; here the state such a worker
leaves (its journal, the index copies, the undo marker, half-written files) is laid out by hand, so each
branch of `land.recover`, `rollback.undo_files` and the runner's `mark_interrupted` / `settle_merges` is
taken on purpose, with real git doing the file and ref work.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import Repo

from mdspec.git import Repo as GitRepo
from mdspec.run import handmerge, land, records, rollback, runner
from mdspec.run.records import RunRecord

BRANCH = "refs/heads/main"


def result_commit(repo: Repo) -> tuple[str, str]:
    """(old, new): a commit `new` on top of `old` that changes, adds, removes and makes executable, with the
    branch left at `old`, as it is while a result lands."""
    repo.commit(
        "base", {"a.txt": "old a\n", "gone.txt": "to be removed\n", "run.sh": "echo hi\n", "keep.txt": "kept\n"}
    )
    old = repo.head()
    (repo.top / "gone.txt").unlink()
    (repo.top / "run.sh").chmod(0o755)
    new = repo.commit(
        "result", {"a.txt": "new a, longer than before\n", "dir/sub/added.txt": "added\n", "other.txt": "other new\n"}
    )
    repo.git("reset", "-q", "--hard", old)
    return old, new


def write_new_files(repo: Repo) -> None:
    """The files as a landing that wrote everything left them."""
    (repo.top / "a.txt").write_text("new a, longer than before\n")
    (repo.top / "dir" / "sub").mkdir(parents=True)
    (repo.top / "dir" / "sub" / "added.txt").write_text("added\n")
    (repo.top / "other.txt").write_text("other new\n")
    (repo.top / "gone.txt").unlink()
    (repo.top / "run.sh").chmod(0o755)


def journal(repo: Repo, old: str, new: str, **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "branch": BRANCH,
        "old": old,
        "new": new,
        "result": new,
        "run_id": "r1",
        "kind": "result",
        "top": str(repo.top),
        "git_dir": str(repo.top / ".git"),
        "lock_ino": None,
        "pid": 1,
    }
    entry.update(extra)
    repo.state.mkdir(parents=True, exist_ok=True)
    (repo.state / land.JOURNAL).write_text(json.dumps(entry))
    return entry


def work_files(repo: Repo, *, swapped: bool, undoing: bool = False) -> None:
    """The landing's work dir: index.orig always; index.new until the new index was swapped in."""
    work = repo.state / "landing"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(repo.top / ".git" / "index", work / "index.orig")
    if not swapped:
        shutil.copy2(repo.top / ".git" / "index", work / "index.new")
    if undoing:
        (work / land.UNDO_MARK).touch()


def assert_tidy(repo: Repo) -> None:
    assert not (repo.state / land.JOURNAL).exists()
    assert not (repo.state / "landing").exists()
    assert not (repo.top / ".git" / "index.lock").exists()
    assert repo.git("for-each-ref", land.KEEP_REF) == ""


def assert_old_files(repo: Repo) -> None:
    assert (repo.top / "a.txt").read_text() == "old a\n"
    assert (repo.top / "gone.txt").read_text() == "to be removed\n"
    assert not (repo.top / "other.txt").exists()
    assert not (repo.top / "dir").exists()  # the directories the landing made, removed with their file
    assert not os.stat(repo.top / "run.sh").st_mode & 0o100


# --- land.recover ------------------------------------------------------------------------------------


def test_no_journal_is_nothing_to_recover(repo: Repo) -> None:
    assert land.recover(GitRepo(repo.top)) is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"branch": "refs/heads/main"}'])
def test_an_unreadable_or_incomplete_journal_is_dropped(repo: Repo, text: str) -> None:
    repo.state.mkdir(parents=True)
    (repo.state / land.JOURNAL).write_text(text)
    head = repo.head()
    assert land.recover(GitRepo(repo.top)) is None
    assert not (repo.state / land.JOURNAL).exists()
    assert repo.head() == head


def test_a_journal_naming_a_commit_git_never_wrote_landed_nothing(repo: Repo) -> None:
    old = repo.head()
    journal(repo, old, "0" * 40)
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.landed
    assert not out.held
    assert "stopped before it moved the branch" in out.reason
    assert repo.head() == old
    assert_tidy(repo)


def test_a_branch_already_at_the_result_was_a_finished_landing(repo: Repo) -> None:
    old, new = result_commit(repo)
    repo.git("reset", "-q", "--hard", new)
    journal(repo, old, new)
    work_files(repo, swapped=True)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.landed
    assert out.commit == new
    assert "had finished" in out.reason
    assert repo.head() == new
    assert_tidy(repo)


def test_files_and_index_done_but_branch_not_moved_is_finished(repo: Repo) -> None:
    old, new = result_commit(repo)
    write_new_files(repo)
    repo.git("read-tree", new)  # the new index, swapped in
    journal(repo, old, new)
    work_files(repo, swapped=True)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.landed
    assert out.reason == "recovery finished the landing"
    assert repo.head() == new
    assert repo.status() == ""
    assert_tidy(repo)


def test_a_half_written_checkout_is_put_back_and_the_result_held(repo: Repo) -> None:
    old, new = result_commit(repo)
    write_new_files(repo)
    (repo.top / "other.txt").write_text("other")  # cut short by a full disk: a beginning of the new content
    (repo.top / "a.txt").unlink()  # removed by git before it wrote the new content
    lock = repo.top / ".git" / "index.lock"
    lock.touch()  # the landing's own lock: its inode is in the journal
    journal(repo, old, new, lock_ino=lock.stat().st_ino)
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.landed
    assert out.held
    assert out.reason.startswith("recovery undid the landing: nothing landed; the checkout was put back")
    assert repo.head() == old
    assert_old_files(repo)
    assert repo.status() == ""
    assert repo.head(land.result_ref("r1")) == new
    assert_tidy(repo)


def test_a_file_someone_else_wrote_meanwhile_is_left_and_named(repo: Repo) -> None:
    old, new = result_commit(repo)
    write_new_files(repo)
    (repo.top / "other.txt").write_text("the user's own words\n")
    journal(repo, old, new)
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.held
    assert "except other.txt, which held neither the old nor the new content" in out.reason
    assert (repo.top / "other.txt").read_text() == "the user's own words\n"
    assert (repo.top / "a.txt").read_text() == "old a\n"
    assert_tidy(repo)


def test_a_lock_that_is_not_the_landings_own_stays(repo: Repo) -> None:
    old, new = result_commit(repo)
    journal(repo, old, new, lock_ino=-1)  # the landing's lock is gone; this one is a git command's of the user's
    work_files(repo, swapped=False)
    lock = repo.top / ".git" / "index.lock"
    lock.touch()
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.held
    assert lock.exists()


def test_an_undone_revert_holds_nothing(repo: Repo) -> None:
    old, new = result_commit(repo)
    write_new_files(repo)
    journal(repo, old, new, kind="revert", run_id="revert")
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.landed
    assert not out.held
    assert_old_files(repo)
    assert repo.git("for-each-ref", land.RESULTS) == ""
    assert_tidy(repo)


def test_a_journal_from_before_kinds_names_a_revert_by_its_run_id(repo: Repo) -> None:
    old, new = result_commit(repo)
    entry = journal(repo, old, new, run_id="revert")
    del entry["kind"]
    (repo.state / land.JOURNAL).write_text(json.dumps(entry))
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.held
    assert repo.git("for-each-ref", land.RESULTS) == ""


def test_an_undo_that_had_begun_is_finished_and_the_index_put_back(repo: Repo) -> None:
    old, new = result_commit(repo)
    index_before = (repo.top / ".git" / "index").read_bytes()
    work_files(repo, swapped=True, undoing=True)  # index.orig is the index from before the landing
    write_new_files(repo)
    repo.git("read-tree", new)  # the new index had been swapped in
    (repo.top / "a.txt").write_text("old a\n")  # the undo had put this one back already
    journal(repo, old, new)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.held
    assert out.reason.startswith("recovery finished undoing the landing: nothing landed")
    assert (repo.top / ".git" / "index").read_bytes() == index_before
    assert_old_files(repo)
    assert repo.status() == ""
    assert_tidy(repo)


def test_a_result_held_already_is_not_held_twice(repo: Repo) -> None:
    old, new = result_commit(repo)
    repo.git("update-ref", land.result_ref("r1"), new)
    write_new_files(repo)
    journal(repo, old, new)
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.held
    assert repo.head(land.result_ref("r1")) == new


def test_a_result_that_cannot_be_held_is_not_said_to_be(repo: Repo) -> None:
    old, new = result_commit(repo)
    repo.git("update-ref", land.RESULTS.rstrip("/"), old)  # a ref where the results' directory must go
    write_new_files(repo)
    journal(repo, old, new)
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.held  # `mdspec apply` is never offered for a result that has no ref
    assert f"could not keep the result {new[:12]} as {land.result_ref('r1')}" in out.reason
    assert "\n" not in out.reason
    assert_old_files(repo)
    assert_tidy(repo)


@pytest.mark.parametrize("on_top", [True, False])
def test_a_branch_moved_on_after_the_landing_is_left_as_it_is(repo: Repo, on_top: bool) -> None:
    old, new = result_commit(repo)
    if on_top:  # the landing finished and the user committed on top of it
        repo.git("reset", "-q", "--hard", new)
    later = repo.commit("the user's next commit", {"later.txt": "later\n"})
    journal(repo, old, new)
    work_files(repo, swapped=True)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert out.landed is on_top
    assert out.commit == new  # landed or not: the result (not rebased) is the new commit here
    assert "moved on" in out.reason
    assert repo.head() == later
    assert (repo.top / "later.txt").read_text() == "later\n"
    assert_tidy(repo)


def test_a_branch_checked_out_nowhere_is_left_as_it_is(repo: Repo) -> None:
    old, new = result_commit(repo)
    repo.git("checkout", "-q", "--detach")
    entry = journal(repo, old, new)
    del entry["top"]  # no checkout recorded: recovery looks for the branch's checkout, and finds none
    (repo.state / land.JOURNAL).write_text(json.dumps(entry))
    work_files(repo, swapped=False)
    out = land.recover(GitRepo(repo.top))
    assert out is not None
    assert not out.landed
    assert not out.held
    assert "left as it is" in out.reason
    assert repo.head(BRANCH) == old
    assert_tidy(repo)


# --- rollback.undo_files -----------------------------------------------------------------------------


def test_undo_puts_back_symlinks_and_a_directory_in_the_way_is_left(repo: Repo) -> None:
    (repo.top / "link").symlink_to("README.md")
    repo.commit("a link and a file", {"plain.txt": "plain\n"})
    old = repo.head()
    (repo.top / "link").unlink()
    (repo.top / "link").symlink_to("elsewhere")
    (repo.top / "plain.txt").unlink()
    (repo.top / "plain.txt").symlink_to("README.md")
    new = repo.commit("retarget the link, make the file a link", {"x.txt": "x\n"})
    repo.git("reset", "-q", "--hard", old)
    # As the landing left them: the links retargeted, and a directory where x.txt should go.
    (repo.top / "link").unlink()
    (repo.top / "link").symlink_to("elsewhere")
    (repo.top / "plain.txt").unlink()
    (repo.top / "plain.txt").symlink_to("README.md")
    (repo.top / "x.txt").mkdir()
    done = rollback.undo_files(GitRepo(repo.top), repo.top, old, new)
    assert sorted(done.restored) == ["link", "plain.txt"]
    assert done.left == ("x.txt",)
    assert os.readlink(repo.top / "link") == "README.md"
    assert not (repo.top / "plain.txt").is_symlink()
    assert (repo.top / "plain.txt").read_text() == "plain\n"
    assert (repo.top / "x.txt").is_dir()


def test_undo_of_a_file_whose_parent_became_a_file(repo: Repo) -> None:
    repo.commit("a file", {"d.txt": "d\n"})
    old = repo.head()
    new = repo.commit("a file in a new dir", {"sub/inner.txt": "inner\n"})
    repo.git("reset", "-q", "--hard", old)
    (repo.top / "sub").write_text("someone's file where the landing wanted a directory\n")
    done = rollback.undo_files(GitRepo(repo.top), repo.top, old, new)
    assert done == rollback.Undone((), ())  # the old tree has no such file, and none is there: nothing to do
    assert (repo.top / "sub").read_text() == "someone's file where the landing wanted a directory\n"


# --- runner.mark_interrupted and settle_merges -------------------------------------------------------


def write_run(repo: Repo, run_id: str, **fields: object) -> None:
    rec: dict[str, object] = {"id": run_id, "status": "running", "reason": "", "branch": BRANCH}
    rec.update(fields)
    records.write(records.runs_dir(repo.state) / run_id, RunRecord(**rec))  # type: ignore[typeddict-item]


def read_run(repo: Repo, run_id: str) -> RunRecord:
    return records.read(records.runs_dir(repo.state) / run_id)


def test_mark_interrupted_without_a_landing(repo: Repo) -> None:
    write_run(repo, "20260101-000000-aaaaaa", stage="backend")
    write_run(repo, "20260101-000001-bbbbbb", status="landed", reason="fast-forward")
    done = runner.mark_interrupted(repo.state)
    assert [r["id"] for r in done] == ["20260101-000000-aaaaaa"]
    rec = read_run(repo, "20260101-000000-aaaaaa")
    assert rec["status"] == "interrupted"
    assert rec.get("interrupted") is True
    assert "stage" not in rec
    assert read_run(repo, "20260101-000001-bbbbbb")["status"] == "landed"


def test_mark_interrupted_takes_a_finished_landing(repo: Repo) -> None:
    write_run(repo, "r1", result="c" * 40)
    landing = land.Recovery("r1", True, False, "d" * 40, "c" * 40, "recovery finished the landing")
    [rec] = runner.mark_interrupted(repo.state, landing)
    assert rec["status"] == "landed"
    assert rec.get("landed_as") == "d" * 40
    assert rec.get("reason") == "the worker stopped while landing; recovery finished the landing"
    assert rec.get("recovery") == "recovery finished the landing"


def test_mark_interrupted_holds_an_undone_landing(repo: Repo) -> None:
    write_run(repo, "r1", result="c" * 40)
    landing = land.Recovery("r1", False, True, "c" * 40, "c" * 40, "recovery undid the landing: nothing landed")
    [rec] = runner.mark_interrupted(repo.state, landing)
    assert rec["status"] == "held"
    assert rec.get("reason", "").endswith("; `mdspec apply r1` lands it")


def test_mark_interrupted_without_a_held_result_says_what_recovery_did(repo: Repo) -> None:
    write_run(repo, "r1", result="c" * 40)
    landing = land.Recovery("r1", False, False, "c" * 40, "c" * 40, "recovery undid the landing: nothing landed")
    [rec] = runner.mark_interrupted(repo.state, landing)
    assert rec["status"] == "interrupted"
    assert rec.get("reason") == "the worker stopped while landing; recovery undid the landing: nothing landed"


def test_mark_interrupted_settles_a_landing_that_was_stuck(repo: Repo) -> None:
    write_run(repo, "r1", status="failed", result="c" * 40, landing_stuck=True, reason="could not be undone")
    write_run(repo, "r2", status="failed", result="e" * 40, landing_stuck=True, reason="another one")
    landing = land.Recovery("r1", False, True, "c" * 40, "c" * 40, "recovery finished undoing the landing")
    [rec] = runner.mark_interrupted(repo.state, landing)
    assert rec["id"] == "r1"
    assert rec["status"] == "held"
    assert rec.get("reason", "").startswith("the landing could not be undone at first; recovery finished undoing")
    assert "landing_stuck" not in read_run(repo, "r1")
    assert read_run(repo, "r2").get("landing_stuck") is True  # not the run recovery was about


def test_settle_merges_sees_a_cherry_pick_that_landed(repo: Repo) -> None:
    result = repo.commit("mdspec: result\n\nMdspec-Run: r1", {"gen.txt": "generated\n"})
    repo.git("update-ref", land.result_ref("r1"), result)
    write_run(repo, "r1", status="held", merging=True, result=result)
    handmerge.settle_merges(GitRepo(repo.top))
    rec = read_run(repo, "r1")
    assert rec["status"] == "landed"
    assert rec.get("landed_as") == result
    assert "merging" not in rec
    assert repo.git("for-each-ref", land.RESULTS) == ""


def test_settle_merges_waits_while_the_cherry_pick_goes_on(repo: Repo) -> None:
    write_run(repo, "r1", status="held", merging=True, result="c" * 40)
    (repo.top / ".git" / "CHERRY_PICK_HEAD").write_text("c" * 40 + "\n")
    handmerge.settle_merges(GitRepo(repo.top))
    rec = read_run(repo, "r1")
    assert rec["status"] == "held"
    assert rec.get("merging") is True


def test_settle_merges_sees_an_abandoned_merge(repo: Repo) -> None:
    write_run(repo, "r1", status="held", merging=True, result="c" * 40)
    write_run(repo, "r2", status="held", result="e" * 40, reason="conflicts")
    handmerge.settle_merges(GitRepo(repo.top))
    rec = read_run(repo, "r1")
    assert rec["status"] == "held"
    assert "merging" not in rec
    assert rec.get("reason") == "the merge by hand was abandoned; `mdspec apply r1` tries again"
    assert read_run(repo, "r2").get("reason") == "conflicts"
