"""Run records under `<state>/runs/<run-id>/`: run.json (rewritten atomically as the run goes) and the
transcript/output files beside it. Reading tolerates a truncated or corrupted run.json.

`RunRecord` is run.json's shape, checked by mypy wherever a record is read or written. It is a
TypedDict, not a dataclass, so the JSON on disk is exactly the dict in memory (records written by older
versions still read) and a new key is one line here.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from pathlib import Path
from typing import Final, Literal, TypedDict, cast

from mdspec.fast import atomic

Status = Literal["running", "landed", "held", "empty", "failed", "interrupted", "cancelled", "superseded", "unreadable"]
RUNNING: Final = "running"  # a worker runs it now (or died: recovery turns it into `interrupted`)
LANDED: Final = "landed"  # its generated commit is on the branch
HELD: Final = "held"  # its result waits under refs/mdspec/results/<id> for `mdspec apply`
EMPTY: Final = "empty"  # the agent changed nothing; a commit with no changes records the spec as implemented
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"  # the worker died before the run finished
CANCELLED: Final = "cancelled"  # `mdspec cancel`
SUPERSEDED: Final = "superseded"  # not landed: a spec commit of the run was amended or dropped meanwhile
UNREADABLE: Final = "unreadable"  # run.json is torn or not JSON; never written, only read

CheckOutcome = Literal["passed", "failed", "skipped"]


class UsageRecord(TypedDict, total=False):
    """Tokens and cost so far (session.Usage as a dict)."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float


class _Identity(TypedDict):
    id: str  # the run id, also the directory name: `YYYYmmdd-HHMMSS-<hex>`
    status: Status


class CiRecord(TypedDict):
    """Where a run of `mdspec ci` delivers its result."""

    remote: str
    branch: str
    deliver: str  # "push" or "pull-request"


class RunRecord(_Identity, total=False):
    """run.json. Every key but `id` and `status` may be missing (older records, failures before a run)."""

    reason: str  # one line: why it ended as it did, and what to do next
    branch: str  # refs/heads/<name> the run implements the spec on
    base: str  # the branch tip the run started from (the generated commit's parent)
    spec_commits: list[str]  # full shas of the spec commits implemented, oldest first
    spec_subjects: list[str]  # their subjects, in the same order
    backend: str  # "anthropic", or the command preset's name ("command" without one)
    model: str  # the model used ("" for a command backend that did not say)
    pid: int | None  # the worker's pid while running
    started: float  # epoch seconds
    ended: float  # epoch seconds
    seconds: float  # ended - started, rounded
    stage: str  # while running: preparing, backend, check, landing
    turns: int  # model turns so far
    tool_calls: int  # tool calls so far
    usage: UsageRecord  # tokens so far
    cost_usd: float | None  # dollars so far
    cost_overrun_usd: float  # dollars spent beyond max_cost_usd by the last turn
    sandbox: str  # the sandbox mode the run's commands ran in
    warnings: list[str]  # one line each (a weaker sandbox than asked, say)
    check: CheckOutcome  # the Mdspec-Check trailer's value
    check_rounds: list[str]  # one summary line per check round
    violations: list[str]  # protected paths (and git dir files) changed and restored
    refusals: list[str]  # the file tools' refusals, one line each
    stopped_by: str | None  # why the backend stopped early (session.STOP_LIMITS / STOP_OTHER), None: it finished
    empty: bool  # the agent changed nothing
    result: str  # the generated commit (held under refs/mdspec/results/<id> until landed)
    landed_as: str  # the commit on the branch (the result rebased when the branch had moved)
    landed_at: float  # epoch seconds: when the branch and the checkout had it
    auto_land: bool  # held only for a while: the next worker lands it by itself
    merging: bool  # `mdspec apply` handed the merge to `git cherry-pick` in the user's checkout
    superseded: list[str]  # spec commits of the run no longer on the branch
    secret_in: list[str]  # where the API key's value was found in the result (not landed)
    landing_stuck: bool  # a landing that failed and could not be undone; recovery settles it
    interrupted: bool  # the worker died while the run went on
    recovery: str  # what recovery did about the run's interrupted landing
    spec_files: list[str]  # the watched files the run's spec commits changed
    cost_unknown: str | None  # why the cost is unknown (no price for the model, a CLI that said none); None: known
    ci: CiRecord  # a run of `mdspec ci`: where it delivers
    delivery: str  # `mdspec ci`: "push" or "pull-request"
    delivered: str  # `mdspec ci`: how the result went ("pull-request")
    pushed_to: str  # `mdspec ci`: the remote branch a result went to when it did not land on its branch
    note_pushed: bool  # `mdspec ci`: the run's git note reached the remote
    pull_request: str  # `mdspec ci --pull-request`: the request's URL, or the compare URL to open one


PAUSE_VAR = "MDSPEC_TEST_PAUSE"
PAUSE_LIMIT = 120.0  # seconds a paused worker waits before it goes on by itself


def pause_point(state_dir: Path, stage: str) -> None:
    """For tests only: with MDSPEC_TEST_PAUSE=<stage>, stop here (and say so in `paused-<stage>`).

    The recovery tests kill the worker while it sits at a named stage, or let it go on by removing the
    marker; stages are `before-backend`, `after-commit`, `checkout` (journal written, files not yet
    touched) and `landing` (files and index updated, the branch not yet moved).
    """
    if os.environ.get(PAUSE_VAR) != stage:
        return
    marker = state_dir / f"paused-{stage}"
    atomic.write_atomic(marker, f"{os.getpid()}\n", durable=False)  # a test reads the pid once it exists
    deadline = time.monotonic() + PAUSE_LIMIT
    while time.monotonic() < deadline and marker.exists():
        time.sleep(0.05)


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def write(run_dir: Path, record: RunRecord) -> None:
    """Replace run.json atomically; on a full disk, rewrite it in place rather than leave it stale.

    Durable (atomic.py's rule) once the run has an outcome: a held result's record is what `mdspec apply`
    and `mdspec status` go by. The progress rewrites of a running run are not: recovery rewrites those.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    path = run_dir / "run.json"
    try:
        atomic.write_atomic(path, text, durable=record["status"] != RUNNING)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.exists():
            raise
        # The file's own blocks still take the new text (unless it grew past them): a final "failed"
        # must not stay "running" forever because the disk filled up. `read` tolerates a torn file.
        with path.open("r+", encoding="utf-8") as f:
            f.write(text)
            f.truncate()


def read(run_dir: Path) -> RunRecord:
    """run.json as written; a torn or corrupted file reads as an `unreadable` record saying why."""
    try:
        data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        return {"id": run_dir.name, "status": UNREADABLE, "reason": f"run.json unreadable: {exc}"}
    if not isinstance(data.get("id"), str):
        data["id"] = run_dir.name
    if not isinstance(data.get("status"), str):
        data["status"] = UNREADABLE
    return cast(RunRecord, data)


def all_runs(state_dir: Path) -> list[RunRecord]:
    """Every run record, newest first."""
    d = runs_dir(state_dir)
    if not d.is_dir():
        return []
    recs = [read(p) for p in d.iterdir() if p.is_dir()]
    # Ids only have second resolution: two runs in one second are told apart by their start time.
    return sorted(recs, key=lambda r: (r["id"][:15], _started(r), r["id"]), reverse=True)


def _started(rec: RunRecord) -> float:
    v = rec.get("started")
    return float(v) if isinstance(v, (int, float)) else 0.0


def find_run(state_dir: Path, prefix: str | None) -> Path | None:
    """The run directory whose id starts with `prefix` (None: the newest), if exactly one matches."""
    d = runs_dir(state_dir)
    if not d.is_dir():
        return None
    if prefix is None:
        newest = all_runs(state_dir)
        return d / newest[0]["id"] if newest else None
    names = sorted((p.name for p in d.iterdir() if p.is_dir()), reverse=True)
    hits = [n for n in names if n.startswith(prefix)]
    return d / hits[0] if len(hits) == 1 else None
