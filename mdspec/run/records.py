"""Run records under `<state>/runs/<run-id>/`: run.json (rewritten atomically as the run goes) and the
transcript/output files beside it. Reading tolerates a truncated or corrupted run.json."""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

RUNNING, LANDED, HELD, EMPTY, FAILED, INTERRUPTED, CANCELLED = (
    "running",
    "landed",
    "held",
    "empty",
    "failed",
    "interrupted",
    "cancelled",
)
SUPERSEDED = "superseded"  # not landed: a spec commit of the run was amended or dropped meanwhile


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
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
    os.replace(tmp, marker)  # whole or absent: a test reads the pid as soon as the file exists
    deadline = time.monotonic() + PAUSE_LIMIT
    while time.monotonic() < deadline and marker.exists():
        time.sleep(0.05)


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def write(run_dir: Path, record: dict[str, Any]) -> None:
    """Replace run.json atomically; on a full disk, rewrite it in place rather than leave it stale."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    path, tmp = run_dir / "run.json", run_dir / f".run.json.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.exists():
            raise
        # The file's own blocks still take the new text (unless it grew past them): a final "failed"
        # must not stay "running" forever because the disk filled up. `read` tolerates a torn file.
        with path.open("r+", encoding="utf-8") as f:
            f.write(text)
            f.truncate()


def read(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
        raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        return {"id": run_dir.name, "status": "unreadable", "reason": f"run.json unreadable: {exc}"}


def all_runs(state_dir: Path) -> list[dict[str, Any]]:
    """Every run record, newest first."""
    d = runs_dir(state_dir)
    if not d.is_dir():
        return []
    recs = [read(p) for p in d.iterdir() if p.is_dir()]
    # Ids only have second resolution: two runs in one second are told apart by their start time.
    return sorted(recs, key=lambda r: (str(r.get("id", ""))[:15], _started(r), str(r.get("id", ""))), reverse=True)


def _started(rec: dict[str, Any]) -> float:
    v = rec.get("started")
    return float(v) if isinstance(v, (int, float)) else 0.0


def find_run(state_dir: Path, prefix: str | None) -> Path | None:
    """The run directory whose id starts with `prefix` (None: the newest), if exactly one matches."""
    d = runs_dir(state_dir)
    if not d.is_dir():
        return None
    if prefix is None:
        newest = all_runs(state_dir)
        return d / str(newest[0]["id"]) if newest else None
    names = sorted((p.name for p in d.iterdir() if p.is_dir()), reverse=True)
    hits = [n for n in names if n.startswith(prefix)]
    return d / hits[0] if len(hits) == 1 else None
