"""Shell commands in their own process group (mdspec/procs.py): the figures they report."""

from __future__ import annotations

import os
from pathlib import Path

from mdspec.run.procs import run_shell


def test_seconds_is_how_long_the_command_ran_not_a_log_offset(tmp_path: Path) -> None:
    log = tmp_path / "check.log"
    log.write_text("x" * 100)  # an earlier round's output: the new output starts at byte 100
    r = run_shell("sleep 0.2; echo done", tmp_path, dict(os.environ), log, timeout=30)
    assert r.returncode == 0 and not r.timed_out
    assert r.output_tail.strip() == "done"
    # Bounds only a wrong figure crosses: it took at least the sleep, and far less than the time limit.
    assert 0.2 <= r.seconds < 30, r.seconds
