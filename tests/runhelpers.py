"""Helpers the run-level tests share: agents as scripts, commits, run records, the user's state."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import FOREGROUND, Repo, agent_script

from mdspec.fast import trailers

QUIET = {"MDSPEC_RUNNING": "1"}  # commit without the hook starting a run

GOOD_AGENT = """
import os, pathlib
pathlib.Path("out.txt").write_text("implemented\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n\\nWrote out.txt.\\n")
"""

NEXT_AGENT = """
import os, pathlib, time
pathlib.Path("next.txt").write_text(f"run at {time.time_ns()}\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Write next.txt\\n")
"""


# --- helpers shared by the run tests (imported by the other test modules) ----------------------------


def set_agent(tmp_path: Path, body: str) -> str:
    """Replace the behaviour of the configured agent (the mdrepo fixture's command runs this script)."""
    return agent_script(tmp_path, body)


def reconfigure(repo: Repo, tmp_path: Path, extra: str = "", agent_extra: str = "", body: str = GOOD_AGENT) -> None:
    """Rewrite .mdspec.toml (command backend running `body`) and commit it without starting a run."""
    cmd = agent_script(tmp_path, body)
    repo.configure(f'{extra}\n[agent]\nbackend = "command"\ncommand = "{cmd}"\n{agent_extra}\n')
    repo.commit("configure mdspec", env=QUIET)


def spec_commit(
    repo: Repo, text: str = "# App\nSay hello.\n", path: str = "spec/app.md", env: dict[str, str] | None = None
) -> str:
    return repo.commit(f"spec: {path} {len(text)}", {path: text}, env=env if env is not None else QUIET)


def run_fg(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return repo.mdspec("run", "--foreground", *args, check=False)


def runs(repo: Repo) -> list[dict[str, Any]]:
    """Every run record, newest first; a run directory whose run.json is not written yet is skipped."""
    d = repo.state / "runs"
    recs = []
    for p in d.iterdir() if d.is_dir() else []:
        try:
            recs.append(json.loads((p / "run.json").read_text()))
        except (FileNotFoundError, ValueError):
            continue
    return sorted(recs, key=lambda r: r["started"], reverse=True)


def last_run(repo: Repo) -> dict[str, Any]:
    return runs(repo)[0]


def user_state(repo: Repo) -> dict[str, Any]:
    """Everything of the user's: branch, tip, index, and every file of the checkout byte for byte."""
    files: dict[str, bytes | str] = {}
    for p in sorted(repo.top.rglob("*")):
        rel = p.relative_to(repo.top)
        if rel.parts[0] == ".git":
            continue
        if p.is_symlink():
            files[str(rel)] = "-> " + os.readlink(p)
        elif p.is_file():
            files[str(rel)] = p.read_bytes()
    return {
        "branch": repo.git("symbolic-ref", "-q", "HEAD", check=False).strip(),
        "tip": repo.head(),
        "index": repo.git("ls-files", "-s"),
        "status": repo.status(),
        "files": files,
    }


def changed_paths(repo: Repo, rev: str) -> list[str]:
    return repo.git("diff-tree", "-r", "--no-commit-id", "--name-only", f"{rev}~1", rev).split()


def assert_next_run_lands(repo: Repo, tmp_path: Path) -> None:
    """After whatever went wrong, a good agent and a new spec commit give a landed generated commit."""
    set_agent(tmp_path, NEXT_AGENT)
    spec = spec_commit(repo, f"# Next\n{time.time()}\n", "spec/next.md", env=FOREGROUND)
    assert repo.head() != spec, repo.last_output
    assert trailers.values(repo.message(), trailers.IMPLEMENTS)[-1] == spec
    assert last_run(repo)["status"] == "landed"


def wait_for(cond: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie waiting for init to reap it runs no more


# --- backend faults ------------------------------------------------------------------------------------


def queued(repo: Repo) -> list[str]:
    q = repo.state / "queue"
    return sorted(p.name for p in q.iterdir() if not p.name.startswith(".")) if q.is_dir() else []
