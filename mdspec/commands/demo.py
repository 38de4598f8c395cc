"""`mdspec demo`: a throwaway repository with a small spec, the hook installed, the spec committed, and the
run followed to its generated commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mdspec import git, templates
from mdspec.commands import log as log_mod
from mdspec.errors import FatalError
from mdspec.fast import paths
from mdspec.printer import Printer
from mdspec.run import records

DEMO_CONFIG = """\
check = "python3 -m unittest -q"

[agent]
{agent}
"""


def _ready(preset: str | None) -> str:
    """The [agent] lines for the demo; fails in one line before anything is created when nothing can run."""
    if preset:
        exe = {"claude-code": "claude", "codex": "codex"}[preset]
        if shutil.which(exe) is None:
            raise FatalError(f"`{exe}` is not on PATH: install it for --preset {preset}, or use ANTHROPIC_API_KEY")
        return f'backend = "command"\npreset = "{preset}"'
    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise FatalError(
            "the demo's agent needs ANTHROPIC_API_KEY: export ANTHROPIC_API_KEY=… (or use --preset claude-code "
            "with Claude Code installed) and run `mdspec demo` again"
        )
    return 'backend = "anthropic"'


def _sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**git.clean_env(), **(env or {})})
    if proc.returncode != 0:
        raise FatalError(f"`{' '.join(args)}` failed in {cwd}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout + proc.stderr


def demo(directory: Path | None, preset: str | None, timeout_min: float, out: Printer) -> int:
    agent_lines = _ready(preset)
    top = Path(tempfile.mkdtemp(prefix="mdspec-demo-")) if directory is None else directory.resolve()
    if directory is not None:
        if top.exists() and any(top.iterdir()):
            raise FatalError(f"{top} is not empty: give --dir a new or empty directory")
        top.mkdir(parents=True, exist_ok=True)
    out(f"mdspec demo in {top}")
    bindir = str(Path(sys.executable).parent)
    env = {"PATH": bindir + os.pathsep + os.environ.get("PATH", "")}  # the hook calls `mdspec` by name
    _sh(["git", "init", "-q", "-b", "main"], top)
    if not subprocess.run(["git", "config", "user.name"], cwd=top, capture_output=True).stdout.strip():
        _sh(["git", "config", "user.name", "mdspec demo"], top)
        _sh(["git", "config", "user.email", "demo@mdspec.invalid"], top)
    _sh(["git", "commit", "-q", "--allow-empty", "-m", "empty start"], top)
    _sh([sys.executable, "-m", "mdspec", "init"], top, env)
    (top / ".mdspec.toml").write_text(DEMO_CONFIG.format(agent=agent_lines), encoding="utf-8")
    _sh(["git", "add", "-A"], top)
    _sh(["git", "commit", "-q", "-m", "Set up mdspec"], top, {**env, "MDSPEC_RUNNING": "1"})
    out("  1. set up mdspec (mdspec init) and committed it")
    spec_src = templates.template_dir() / "demo" / "spec" / "wordfreq.md"
    (top / "spec").mkdir(exist_ok=True)
    (top / "spec" / "wordfreq.md").write_text(spec_src.read_text(encoding="utf-8"), encoding="utf-8")
    _sh(["git", "add", "-A"], top)
    out("  2. wrote spec/wordfreq.md and committed it; the post-commit hook says:")
    for line in _sh(["git", "commit", "-q", "-m", "spec: wordfreq, a word-frequency command"], top, env).splitlines():
        out("     " + line)
    out("  3. following the run (mdspec log -f):")
    state = top / ".git" / paths.STATE_DIRNAME
    deadline = time.monotonic() + 30
    while records.find_run(state, None) is None:
        if time.monotonic() > deadline:
            raise FatalError(f"no run started within 30 s: see {state / 'worker.log'}")
        time.sleep(0.2)
    cwd = os.getcwd()
    try:
        os.chdir(top)
        log_mod.log(top, None, True, lambda s: out("     " + s))
    finally:
        os.chdir(cwd)
    rec = records.read(records.find_run(state, None) or state)
    deadline = time.monotonic() + timeout_min * 60
    while rec.get("status") == records.RUNNING and time.monotonic() < deadline:
        time.sleep(0.5)
        rec = records.read(records.find_run(state, None) or state)
    out("  4. the result:")
    for line in _sh(["git", "log", "--stat", "--format=%h %an%n    %s", "-2"], top).splitlines():
        out("     " + line)
    out(f"Look around: cd {top} && mdspec status && git log -p -1. Undo the generated commit: git revert HEAD")
    return 0 if rec.get("status") == records.LANDED else 1
