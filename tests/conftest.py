"""Shared fixtures: real git repositories in tmp dirs with a deterministic git environment.

Every test gets its own HOME (no user git config), no system git config, fixed identity, and `mdspec`
subprocesses that import this checkout's code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mdspec.run.lock import lock_holder

PROJECT = Path(__file__).resolve().parent.parent


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Aim git and mdspec at nothing of the machine's: a HOME of their own under `tmp_path`, no system git
    config, no inherited GIT_/MDSPEC_/ANTHROPIC_ variables, and `mdspec` subprocesses importing this
    checkout. Returns the HOME."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for k in list(os.environ):
        if k.startswith(("GIT_", "MDSPEC_", "PRE_COMMIT")) or k.startswith("ANTHROPIC_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(tmp_path / "no-template"))
    (tmp_path / "no-template").mkdir(exist_ok=True)
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    monkeypatch.setenv("MDSPEC_RAISE", "")
    # Tests put agent scripts and dumps in tmp dirs the sandbox hides; the sandbox has tests of its own
    # (test_sandbox.py, test_attacks.py), which unset this.
    monkeypatch.setenv("MDSPEC_SANDBOX", "off")
    return home


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(monkeypatch, tmp_path)


@dataclass
class Repo:
    top: Path

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.top, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        if (env or {}).get("MDSPEC_FOREGROUND") or os.environ.get("MDSPEC_FOREGROUND"):
            self.wait_landed()  # a foreground run in the hook lands once the git command has returned
        return proc.stdout + proc.stderr

    def write(self, path: str, text: str) -> Path:
        p = self.top / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
        return p

    def commit(self, message: str, files: dict[str, str] | None = None, env: dict[str, str] | None = None) -> str:
        for path, text in (files or {}).items():
            self.write(path, text)
        self.git("add", "-A")
        out = self.git("commit", "-m", message, env=env)
        self.last_output = out
        # The sha of the commit made here; HEAD may already be a generated commit after a foreground run.
        short = out.split("]", 1)[0].split()[-1]
        return self.head(short)

    def try_commit(self, message: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`git commit -m` of what is staged, its result returned rather than asserted (hooks' output, a
        refusal)."""
        return subprocess.run(
            ["git", "commit", "-m", message],
            cwd=self.top,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def wait_landed(self, timeout: float = 60.0) -> None:
        """Wait for what a foreground run in the hook left to land once `git commit` returned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = False
            for p in (self.state / "runs").glob("*/run.json"):
                try:
                    rec = json.loads(p.read_text())
                except ValueError:
                    waiting = True
                    continue
                waiting = waiting or (rec.get("status") == "held" and bool(rec.get("auto_land")))
            if not waiting and lock_holder(self.state) is None:
                return
            time.sleep(0.02)

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev).strip()

    def message(self, rev: str = "HEAD") -> str:
        return self.git("log", "-1", "--format=%B", rev)

    def log(self, n: int = 10) -> list[str]:
        return self.git("log", f"-{n}", "--format=%s").splitlines()

    def status(self) -> str:
        return self.git("status", "--porcelain")

    def mdspec(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "mdspec", *args],
            cwd=self.top,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"mdspec {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def configure(self, text: str) -> None:
        """Replace .mdspec.toml with `text` (dedented)."""
        self.write(".mdspec.toml", text)

    @property
    def state(self) -> Path:
        return self.top / ".git" / "mdspec"


def make_repo(path: Path, *init_args: str) -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    r = Repo(path)
    r.git("init", "-q", "-b", "main", *init_args)
    r.git("config", "user.name", "Ada Lovelace")
    r.git("config", "user.email", "ada@example.com")
    r.git("config", "commit.gpgsign", "false")
    r.commit("initial", {"README.md": "# project\n"})
    return r


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A repository with one commit and no mdspec set-up."""
    return make_repo(tmp_path / "repo")


def agent_script(tmp_path: Path, body: str, name: str = "agent.py") -> str:
    """A command-backend agent: a Python script run in the worktree; returns the `command` value.

    The script is the test's, not mdspec's: `-S` skips site-packages, and with them the coverage start-up
    that every Python process of the suite pays (about a tenth of a second each, for every run)."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return f"{sys.executable} -S {p}"


@pytest.fixture(scope="session")
def initialised_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository as `repo` makes it, after `mdspec init --git-hook`: made once per test process and
    copied by `mdrepo` (`mdspec init` itself is tested in test_install.py). Nothing in it names its path."""
    tmp = tmp_path_factory.mktemp("initialised")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        made = make_repo(tmp / "repo")
        made.mdspec("init", "--git-hook")
    return made.top


@pytest.fixture
def mdrepo(repo: Repo, tmp_path: Path, initialised_repo: Path) -> Repo:
    """A repository after `mdspec init --git-hook`, with a command backend that writes out.txt, committed."""
    shutil.rmtree(repo.top)
    shutil.copytree(initialised_repo, repo.top, symlinks=True)
    cmd = agent_script(
        tmp_path,
        """
        import os, pathlib
        pathlib.Path("out.txt").write_text("implemented\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add out.txt\\n\\nWrote out.txt.\\n")
        """,
    )
    repo.configure(f'[agent]\nbackend = "command"\ncommand = "{cmd}"\n')
    repo.commit("set up mdspec", env={"MDSPEC_RUNNING": "1"})
    return repo


FOREGROUND = {"MDSPEC_FOREGROUND": "1"}
