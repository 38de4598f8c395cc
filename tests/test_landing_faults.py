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
    set_agent,
    spec_commit,
    user_state,
    wait_for,
)

from mdspec import trailers
from mdspec.lock import lock_holder

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
        with (self.mount / "filler").open("ab") as f:
            chunk = b"\0" * (1 << 16)
            try:
                while self.free() > leave:
                    f.write(chunk[: max(4096, min(len(chunk), self.free() - leave))])
                    f.flush()
            except OSError:
                pass  # full

    def empty(self) -> None:
        (self.mount / "filler").unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
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
    assert "no space left on device" in rec["reason"] and "\n" not in rec["reason"], rec["reason"]
    assert "nothing landed; the checkout was put back" in rec["reason"]
    assert user_state(repo) == before  # no partial big.bin, index and branch as they were
    assert not (repo.top / "big.bin").exists() and repo.head() == spec
    assert_no_leftovers(repo)
    assert repo.head(f"refs/mdspec/results/{rec['id']}") == rec["result"]

    disk.empty()
    proc = repo.mdspec("apply")
    assert f"run {rec['id']} landed" in proc.stdout
    assert repo.head() == rec["result"] and repo.status() == ""
    assert len((repo.top / "big.bin").read_bytes()) == BIG
    assert_no_leftovers(repo)
