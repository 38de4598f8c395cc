"""Faults injected into landing on real repositories: a full disk (a small tmpfs), `git gc --prune=now`
and an unwritable results ref, a worker killed while git writes the checkout, a branch moved under a
landing, and `mdspec revert` after a killed landing.

Each test checks the user's branch, index and files, and that mdspec's state directory keeps no
journal, lock or temporary file once the fault is over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo, make_repo
from runhelpers import (
    QUIET,
    assert_next_run_lands,
    last_run,
    pid_gone,
    queued,
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)
from test_recovery import kill_at

from mdspec.fast import trailers, triggers
from mdspec.run import land, records
from mdspec.run.lock import lock_holder

BIG = 1_500_000  # bytes of random data: incompressible, so git's object is as big as the file

BIG_AGENT = f"""
import os, pathlib
pathlib.Path("big.bin").write_bytes(os.urandom({BIG}))
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add big.bin\\n")
"""


@dataclass
class Disk:
    """A repository on a tmpfs of its own, so a test can fill the disk under it."""

    mount: Path
    repo: Repo

    def free(self) -> int:
        st = os.statvfs(self.mount)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Leave about `leave` bytes free (0: none at all)."""
        with (self.mount / "filler").open("ab", buffering=0) as f:
            chunk = b"\0" * (1 << 16)
            try:
                while self.free() > leave:
                    f.write(chunk[: max(4096, min(len(chunk), self.free() - leave))])
            except OSError:
                pass  # full

    def empty(self) -> None:
        (self.mount / "filler").unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {proc.stderr.strip()}")
    try:
        repo = make_repo(mount / "repo")
        repo.mdspec("init", "--git-hook")
        set_agent(tmp_path, BIG_AGENT)
        repo.configure(f'[agent]\nbackend = "command"\ncommand = "{set_agent(tmp_path, BIG_AGENT)}"\n')
        repo.commit("set up mdspec", env=QUIET)
        yield Disk(mount, repo)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def release(repo: Repo, stage: str) -> None:
    (repo.state / f"paused-{stage}").unlink()


def wait_paused(repo: Repo, stage: str) -> int:
    marker = repo.state / f"paused-{stage}"
    wait_for(marker.exists, what=f"the worker to pause at {stage}")
    wait_for(lambda: marker.read_text().endswith("\n"), what="the pause marker")
    return int(marker.read_text())


def wait_worker_done(repo: Repo) -> None:
    wait_for(lambda: lock_holder(repo.state) is None, 60, "the worker to finish")


def assert_no_leftovers(repo: Repo) -> None:
    """No landing journal, index lock, work files or temporary files of mdspec's anywhere."""
    assert not (repo.top / ".git" / "index.lock").exists()
    assert not (repo.state / "landing.json").exists()
    assert not (repo.state / "landing").exists() or not any((repo.state / "landing").iterdir())
    stray = [str(p) for p in repo.state.rglob("*") if p.name.endswith(".tmp") or ".mdspec-undo" in p.name]
    stray += [str(p) for p in repo.top.rglob(".*.mdspec-undo")]
    assert stray == []


def background_spec(repo: Repo, stage: str, extra: dict[str, str] | None = None, text: str = "# App\nBig.\n") -> str:
    return spec_commit(repo, text, env={"MDSPEC_TEST_PAUSE": stage, **(extra or {})})


# --- 1. a full disk while landing ----------------------------------------------------------------------


def test_disk_full_while_git_writes_the_checkout_is_undone_and_held(disk: Disk) -> None:
    repo = disk.repo
    spec = background_spec(repo, "after-commit")
    wait_paused(repo, "after-commit")
    before = user_state(repo)
    disk.fill(leave=BIG // 3)  # room for the index copies and the journal, not for big.bin
    release(repo, "after-commit")
    wait_worker_done(repo)

    rec = last_run(repo)
    assert rec["status"] == "held", rec
    assert "no space left on device" in rec["reason"], rec["reason"]
    assert "\n" not in rec["reason"], rec["reason"]
    assert "nothing landed; the checkout was put back" in rec["reason"]
    assert user_state(repo) == before  # no partial big.bin, index and branch as they were
    assert not (repo.top / "big.bin").exists()
    assert repo.head() == spec
    assert_no_leftovers(repo)
    assert repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]

    disk.empty()
    proc = repo.mdspec("apply")
    assert f"run {rec['id']} landed" in proc.stdout
    assert repo.head() == rec["result"]
    assert repo.status() == ""
    assert len((repo.top / "big.bin").read_bytes()) == BIG
    assert_no_leftovers(repo)


SHRINK_AGENT = """
import os, pathlib
pathlib.Path("data.bin").write_text("small now\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Shrink data.bin\\n")
"""


def test_disk_full_when_even_the_undo_fails_keeps_the_lock_until_status_finishes_it(disk: Disk, tmp_path: Path) -> None:
    """The result shrinks a big file; with the disk full at the `landing` pause the branch cannot be
    moved, and putting the big file back cannot be written either."""
    repo = disk.repo
    old_data = os.urandom(BIG)
    (repo.top / "data.bin").write_bytes(old_data)
    repo.commit("data", env=QUIET)
    set_agent(tmp_path, SHRINK_AGENT)
    spec = background_spec(repo, "landing")
    wait_paused(repo, "landing")
    assert (repo.top / "data.bin").read_text() == "small now\n"  # files and index written, branch not moved
    (repo.state / "paused-landing").write_bytes(b"")  # its page freed now, not by the release
    disk.fill()
    release(repo, "landing")
    wait_worker_done(repo)

    rec = last_run(repo)
    assert rec["status"] == "failed", rec
    reason = rec["reason"]
    assert "no space left on device" in reason, reason
    assert "could not be undone" in reason, reason
    assert "free some disk space, then run `mdspec status`: it finishes the undo" in reason
    assert repo.head() == spec
    assert (repo.state / "landing.json").exists()
    assert (repo.top / ".git" / "index.lock").exists()
    refused = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "user"], cwd=repo.top, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "index.lock" in refused.stderr
    assert [p.name for p in repo.top.iterdir() if p.name.startswith(".data.bin")] == []  # no half copy

    # Still full: status says what is wrong and what to do, and changes nothing.
    full = repo.mdspec("status")
    assert "free some disk space" in full.stdout, full.stdout
    assert (repo.state / "landing.json").exists()
    assert repo.head() == spec

    disk.empty()
    out = repo.mdspec("status").stdout
    assert f"run {rec['id']} was recovered: held" in out, out
    assert "recovery finished undoing the landing" in out, out
    assert (repo.top / "data.bin").read_bytes() == old_data
    assert repo.head() == spec
    assert repo.status() == ""
    assert repo.git("diff", "--cached") == ""
    assert_no_leftovers(repo)
    held = last_run(repo)
    assert held["id"] == rec["id"], held
    assert held["status"] == "held", held
    assert repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]
    assert repo.mdspec("apply").returncode == 0
    assert repo.head() == rec["result"]
    assert (repo.top / "data.bin").read_text() == "small now\n"
    assert repo.status() == ""


# --- 2. a full disk while a run goes on -----------------------------------------------------------------


def test_disk_full_during_a_run_fails_it_and_the_next_run_lands(disk: Disk, tmp_path: Path) -> None:
    repo = disk.repo
    filler = disk.mount / "filler"
    set_agent(
        tmp_path,
        f"""
        import os, pathlib
        pathlib.Path("big.bin").write_bytes(os.urandom({BIG}))
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add big.bin\\n")
        # Something else on the machine fills the disk before mdspec commits the result.
        with open({str(filler)!r}, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\\0" * 65536)
            except OSError:
                pass
    """,
    )
    spec = spec_commit(repo, "# App\nBig.\n", env={})  # background, through the hook
    before = user_state(repo)  # the worker touches the checkout only when it lands
    wait_for(filler.exists, what="the agent to fill the disk")
    wait_worker_done(repo)

    rec = last_run(repo)
    assert rec["status"] == "failed", rec  # not `running` forever: run.json was rewritten in place
    assert "no space left on device" in rec["reason"].lower(), rec["reason"]
    assert "\n" not in rec["reason"], rec["reason"]
    assert "ended" in rec
    assert "stage" not in rec
    assert user_state(repo) == before
    assert repo.head() == spec
    assert_no_leftovers(repo)
    # (git itself may leave a `tmp_obj_*` in .git/objects when its write fails; `git prune` expires it.)
    assert queued(repo) == []
    status = repo.mdspec("status")
    assert "no space left on device" in status.stdout.lower()

    disk.empty()  # space freed; nothing of mdspec's is deleted by hand
    assert_next_run_lands(repo, tmp_path)
    assert spec in trailers.values(repo.message(), trailers.IMPLEMENTS)
    assert_no_leftovers(repo)


def test_state_writes_on_a_full_disk_leave_no_temp_files(disk: Disk) -> None:
    repo = disk.repo
    state = repo.state
    rdir = state / "runs" / "r1"
    records.write(rdir, {"id": "r1", "status": "running", "reason": ""})
    disk.fill()
    # An existing run.json is rewritten in place; a new one cannot be written, and says so.
    records.write(rdir, {"id": "r1", "status": "failed", "reason": "no space left on device"})
    assert records.read(rdir)["status"] == "failed"
    with pytest.raises(OSError, match="No space left on device"):
        records.write(state / "runs" / "r2", {"id": "r2", "status": "running", "reason": "x" * 5000})
    with pytest.raises(OSError, match="No space left on device"):
        triggers.enqueue(str(state), "a" * 40, "refs/heads/main\n" + "x" * 5000)
    assert triggers.entries(str(state)) == []
    assert_no_leftovers(repo)
    assert [p.name for p in state.rglob(".*")] == []


# --- 3. `git gc --prune=now` during a run, and a hold that fails --------------------------------------------


def test_gc_prune_now_during_a_run_keeps_the_result(mdrepo: Repo, tmp_path: Path) -> None:
    repo = mdrepo
    set_agent(tmp_path, BIG_AGENT)
    spec = background_spec(repo, "after-commit")
    wait_paused(repo, "after-commit")
    rec = last_run(repo)
    assert repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]
    repo.git("gc", "--prune=now", "--quiet")
    assert repo.git("cat-file", "-t", rec["result"]).strip() == "commit"
    release(repo, "after-commit")
    wait_worker_done(repo)
    done = last_run(repo)
    assert done["status"] == "landed", done
    assert repo.head() == rec["result"]
    assert repo.head("HEAD~1") == spec
    assert len((repo.top / "big.bin").read_bytes()) == BIG
    assert repo.status() == ""
    assert repo.git("for-each-ref", "refs/mdspec/results") == ""  # landing dropped the ref
    assert_no_leftovers(repo)


def test_a_hold_that_cannot_be_written_fails_the_run_and_never_offers_apply(mdrepo: Repo) -> None:
    repo = mdrepo
    spec = background_spec(repo, "after-commit")
    wait_paused(repo, "after-commit")
    before = user_state(repo)
    rec = last_run(repo)
    results = repo.top / ".git" / "refs" / "mdspec" / "results"
    shutil.rmtree(results)
    results.write_text("not a directory\n")  # no ref can be written under it now
    release(repo, "after-commit")
    wait_worker_done(repo)

    failed = last_run(repo)
    assert failed["id"] == rec["id"], failed
    assert failed["status"] == "failed", failed
    reason = failed["reason"]
    assert f"could not keep the result {rec['result'][:12]} as refs/mdspec/results/{rec['id']}" in reason, reason
    assert "the result was not landed" in reason
    assert "mdspec apply" not in reason
    assert "\n" not in reason
    assert user_state(repo) == before
    assert repo.head() == spec
    assert_no_leftovers(repo)
    assert "mdspec apply" not in repo.mdspec("status").stdout


# --- 4. the worker killed while `git read-tree -m -u` writes the checkout ------------------------------------


def slow_git(tmp_path: Path, marker: Path, seconds: float = 2.0) -> dict[str, str]:
    """A `git` first on PATH that, for a real (not --dry-run) read-tree, says so and sleeps, then runs git."""
    real = shutil.which("git")
    assert real is not None
    bindir = tmp_path / "slowgit"
    bindir.mkdir()
    wrapper = bindir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in\n'
        f'  *" --dry-run "*) ;;\n'
        f'  *" read-tree "*) echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; sleep {seconds} ;;\n'
        "esac\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def test_worker_killed_while_git_writes_the_checkout_waits_for_the_orphan(mdrepo: Repo, tmp_path: Path) -> None:
    repo = mdrepo
    set_agent(tmp_path, BIG_AGENT)
    marker = tmp_path / "read-tree.pid"
    spec = spec_commit(repo, "# App\nBig.\n")
    # A background worker started by `mdspec run`: one started by the hook would find git's exec-path
    # (git puts it first on PATH for hooks) before the wrapper.
    assert "in the background" in repo.mdspec("run", env=slow_git(tmp_path, marker)).stdout
    wait_for(marker.exists, 60, "the landing's read-tree to start")
    orphan = int(marker.read_text())
    worker = lock_holder(repo.state)
    assert worker is not None
    rec = last_run(repo)
    os.kill(worker, signal.SIGKILL)  # the worker only: its git goes on, as after an OOM kill
    wait_for(lambda: pid_gone(worker), what="the worker to die")
    assert not pid_gone(orphan)

    out = repo.mdspec("status").stdout  # at once, while the orphaned git still writes
    assert pid_gone(orphan)  # recovery waited for it (or ended it) before touching anything
    assert f"run {rec['id']} was interrupted" in out, out
    assert "Another git process" not in out
    assert not (repo.top / ".git" / "index.lock").exists()
    assert not (repo.state / "landing.json").exists()
    assert_no_leftovers(repo)
    assert repo.git("diff", "--cached") == ""
    assert repo.status() == ""
    done = last_run(repo)
    assert done["id"] == rec["id"]
    assert "Another git process" not in done["reason"]
    assert "seems to be running" not in done["reason"]
    if done["status"] == "landed":
        assert repo.head() == done["landed_as"]
        assert len((repo.top / "big.bin").read_bytes()) == BIG
    else:
        assert done["status"] == "held", done
        assert repo.head() == spec
        assert not (repo.top / "big.bin").exists()
        assert repo.head(f"refs/mdspec/results/{rec['id']}") == done["result"]
        assert repo.mdspec("apply").returncode == 0
        assert repo.head("HEAD~1") == spec
        assert repo.status() == ""
    assert len((repo.top / "big.bin").read_bytes()) == BIG


def test_git_lock_messages_are_never_taken_for_file_names(repo: Repo) -> None:
    """git's "Another git process seems to be running" advice is prose, not a list of files."""
    (repo.top / ".git" / "index.lock").touch()
    out = subprocess.run(
        ["git", "read-tree", "-m", "-u", "--dry-run", "HEAD", "HEAD"], cwd=repo.top, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "Another git process" in out.stderr
    why = land._refusal(out.stderr)
    assert "Another git process" not in why
    assert "uncommitted changes" not in why
    assert "index.lock" in why
    # The files git names on lines of their own are still read as files.
    (repo.top / ".git" / "index.lock").unlink()
    repo.commit("app", {"app.txt": "one\n"})
    first = repo.head()
    second = repo.commit("app 2", {"app.txt": "two\n"})
    repo.git("reset", "-q", "--hard", first)
    repo.write("app.txt", "mine\n")
    out = subprocess.run(
        ["git", "read-tree", "-m", "-u", "--dry-run", first, second], cwd=repo.top, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert land._refusal(out.stderr) == "your uncommitted changes touch files the run changed: app.txt"


# --- 5. the branch moved between the checkout update and the compare-and-swap --------------------------------


def test_branch_moved_while_landing_is_undone_and_held(mdrepo: Repo) -> None:
    repo = mdrepo
    setup = repo.head()
    spec = background_spec(repo, "landing")
    wait_paused(repo, "landing")
    repo.write("mine.txt", "the user's untracked file\n")  # made while the landing waits
    rec = last_run(repo)
    assert (repo.top / "out.txt").read_text() == "implemented\n"  # files and index written, branch not moved
    repo.git("update-ref", "refs/heads/main", setup)  # no index lock: update-ref takes only the ref's
    release(repo, "landing")
    wait_worker_done(repo)

    held = last_run(repo)
    assert held["id"] == rec["id"], held
    assert held["status"] == "held", held
    assert "the branch moved while landing; nothing landed; the checkout was put back" in held["reason"]
    assert f"`mdspec apply {rec['id']}` lands it" in held["reason"]
    assert repo.head() == setup  # where the user put it
    # Files and index as they were before the landing: the spec commit's tree, the user's file kept.
    assert not (repo.top / "out.txt").exists()
    assert repo.git("write-tree").strip() == repo.head(f"{spec}^{{tree}}")
    assert (repo.top / "mine.txt").read_text() == "the user's untracked file\n"
    assert_no_leftovers(repo)
    assert repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]


def test_branch_moved_and_the_undo_stuck_on_a_full_disk_is_undone_later(disk: Disk, tmp_path: Path) -> None:
    """The journal outlives a failed undo: recovery goes on undoing although the branch is elsewhere."""
    repo = disk.repo
    old_data = os.urandom(BIG)
    (repo.top / "data.bin").write_bytes(old_data)
    setup = repo.commit("data", env=QUIET)
    set_agent(tmp_path, SHRINK_AGENT)
    spec = background_spec(repo, "landing")
    wait_paused(repo, "landing")
    repo.git("update-ref", "refs/heads/main", setup)
    (repo.state / "paused-landing").write_bytes(b"")
    disk.fill()
    release(repo, "landing")
    wait_worker_done(repo)
    rec = last_run(repo)
    assert rec["status"] == "failed", rec
    assert "the branch moved while landing" in rec["reason"], rec
    assert "could not be undone" in rec["reason"]
    assert (repo.state / "landing.json").exists()
    assert (repo.top / ".git" / "index.lock").exists()
    assert (repo.top / "data.bin").read_text() == "small now\n"  # still the result's: nothing half written

    disk.empty()
    out = repo.mdspec("status").stdout
    assert "recovery finished undoing the landing: nothing landed; the checkout was put back" in out, out
    assert repo.head() == setup  # the user's move stays
    assert (repo.top / "data.bin").read_bytes() == old_data
    assert repo.git("write-tree").strip() == repo.head(f"{spec}^{{tree}}")
    assert last_run(repo)["status"] == "held"
    assert_no_leftovers(repo)


# --- 6. `mdspec revert` recovers an interrupted landing first ----------------------------------------------


def test_revert_after_a_killed_landing_recovers_then_reverts_it(mdrepo: Repo) -> None:
    repo = mdrepo
    spec = background_spec(repo, "landing")
    kill_at(repo, "landing")
    rec = last_run(repo)
    assert repo.head() == spec
    assert (repo.top / ".git" / "index.lock").exists()

    out = repo.mdspec("revert").stdout
    assert f"run {rec['id']} was interrupted: landed" in out, out
    assert f"reverted {rec['result'][:10]}" in out
    assert repo.head("HEAD~1") == rec["result"]
    assert repo.head("HEAD~2") == spec
    assert trailers.values(repo.message(), trailers.REVERTS) == [rec["result"]]
    assert not (repo.top / "out.txt").exists()
    assert repo.status() == ""
    assert last_run(repo)["status"] == "landed"
    assert_no_leftovers(repo)


# --- git's racy-clean rule: an edit in the index's own second -------------------------------------------------


def test_an_edit_in_the_index_s_own_second_is_never_overwritten(mdrepo: Repo) -> None:
    """git trusts an entry's stat data only when the file is older than the index; the landing's copy of
    the index must keep the index's mtime, or an edit made in that second looks clean and is lost.

    Deterministic: the edit keeps size and mtime (as `cp -p` or a tar extraction do), ctime is not trusted
    (`core.trustctime = false`), and the index is stamped with the file's mtime."""
    repo = mdrepo
    repo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    run_id = trailers.values(repo.message(), trailers.RUN)[0]
    head = repo.head()
    repo.git("config", "core.trustctime", "false")
    out, index = repo.top / "out.txt", repo.top / ".git" / "index"
    stamp = out.stat().st_mtime_ns - 10**10
    os.utime(out, ns=(stamp, stamp))
    repo.git("update-index", "-q", "--refresh")  # the entry records that mtime, older than the index
    out.write_text("my own edit\n")  # as long as "implemented\n"
    os.utime(out, ns=(stamp, stamp))
    os.utime(index, ns=(stamp, stamp))  # as if the index had been written in the edit's second
    assert repo.git("diff-files", "--name-only").split() == ["out.txt"]  # git itself sees the edit

    proc = repo.mdspec("revert", run_id, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "revert not applied" in proc.stderr, proc.stdout + proc.stderr
    assert out.read_text() == "my own edit\n"
    assert repo.head() == head


def test_disk_full_before_the_run_is_recorded_is_one_line_and_the_spec_stays_pending(
    disk: Disk, tmp_path: Path
) -> None:
    repo = disk.repo
    spec = spec_commit(repo, "# App\nSmall.\n")
    before = user_state(repo)
    disk.fill()
    proc = repo.mdspec("run", "--foreground", check=False)
    log = repo.state / "error.log"
    assert proc.returncode == 1, (proc.stdout, proc.stderr, log.read_text() if log.exists() else "")
    assert proc.stderr.startswith("mdspec: error: no space left on device") or (
        "could not start the run: no space left on device" in proc.stdout
    ), (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stdout + proc.stderr
    disk.empty()
    assert user_state(repo) == before
    assert repo.head() == spec
    info = json.loads(repo.mdspec("status", "--json").stdout)
    assert [s["commit"] for s in info["pending"]] == [spec]
    assert_next_run_lands(repo, tmp_path)
    assert spec in trailers.values(repo.message(), trailers.IMPLEMENTS)
    assert_no_leftovers(repo)


def test_a_killed_revert_landing_is_undone_and_nothing_is_held(mdrepo: Repo) -> None:
    """The journal says what is landing (`kind`), so recovery holds a run's result but never a revert."""
    repo = mdrepo
    repo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    head = repo.head()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "revert"],
        cwd=repo.top,
        env={**os.environ, records.PAUSE_VAR: "checkout"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = wait_paused(repo, "checkout")
    journal = json.loads((repo.state / "landing.json").read_text())
    assert journal["kind"] == land.Kind.REVERT.value
    os.kill(pid, signal.SIGKILL)
    proc.wait()
    repo.mdspec("status")
    assert repo.head() == head
    assert repo.status() == ""
    assert repo.git("for-each-ref", "refs/mdspec/results/") == ""
    assert_no_leftovers(repo)


def test_a_journal_without_kind_is_read_as_before() -> None:
    assert land._journal_kind({"run_id": "revert"}) is land.Kind.REVERT  # written by an older mdspec
    assert land._journal_kind({"run_id": "20260101-000000-abcdef"}) is land.Kind.RESULT
    assert land._journal_kind({"run_id": "revert", "kind": "result"}) is land.Kind.RESULT
