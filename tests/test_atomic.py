"""mdspec/atomic.py: whole or absent, and fsync'ed exactly where the durability rule says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Repo

from mdspec.fast import atomic, triggers
from mdspec.git import Repo as GitRepo
from mdspec.run import land, records


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fsync mdspec asks for, by file descriptor (the real fsync still runs)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_replaces_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "f.txt"
    target.write_text("old\n")
    atomic.write_atomic(target, "new text\n", durable=False)
    assert target.read_text() == "new text\n"
    atomic.write_atomic(target, b"\x00bytes", durable=True)
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "f.txt"
    target.write_text("old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left on device"):
        atomic.write_atomic(target, "new\n", durable=True)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_mode_is_kept_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic.write_atomic(tmp_path / "run.sh", "#!/bin/sh\n", durable=False, mode=0o755)
    finally:
        os.umask(old)
    assert (tmp_path / "run.sh").stat().st_mode & 0o777 == 0o755


def test_durable_syncs_the_file_and_its_directory(tmp_path: Path, fsyncs: list[int]) -> None:
    atomic.write_atomic(tmp_path / "a", "x", durable=False)
    assert fsyncs == []
    atomic.write_atomic(tmp_path / "b", "x", durable=True)
    assert len(fsyncs) == 2


def test_the_rule_where_it_is_used(mdrepo: Repo, fsyncs: list[int]) -> None:
    state = mdrepo.state
    state.mkdir(exist_ok=True)
    triggers.enqueue(str(state), "a" * 40, "refs/heads/main")  # a queue entry: durable
    assert len(fsyncs) == 2
    rdir = records.runs_dir(state) / "20260101-000000-abcdef"
    records.write(rdir, {"id": rdir.name, "status": records.RUNNING, "turns": 3})  # progress: not durable
    assert len(fsyncs) == 2
    records.write(rdir, {"id": rdir.name, "status": records.HELD, "result": "b" * 40})  # an outcome: durable
    assert len(fsyncs) == 4
    land._write_journal(GitRepo(mdrepo.top), {"branch": "refs/heads/main"})  # the landing journal: durable
    assert len(fsyncs) == 6
