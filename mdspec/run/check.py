"""The check command (DESIGN §5): run in the worktree after the agent finishes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mdspec.exec.procs import run_shell

FEEDBACK_CHARS = 12_000  # what of a failed check's output goes back to the agent


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    summary: str  # one line for the record
    output: str  # capped output for the agent


def run_check(
    command: str, worktree: Path, env: Mapping[str, str], log: Path, minutes: float, sandbox: tuple[str, ...] = ()
) -> CheckResult:
    res = run_shell(command, worktree, env, log, timeout=minutes * 60, tail_chars=FEEDBACK_CHARS, prefix=sandbox)
    if res.timed_out:
        return CheckResult(False, f"check timed out after {minutes:g} min", res.output_tail)
    if res.returncode == 0:
        return CheckResult(True, f"check passed in {res.seconds:.1f}s", res.output_tail)
    return CheckResult(False, f"check failed with exit status {res.returncode}", res.output_tail)
