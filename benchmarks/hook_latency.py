"""How much the mdspec post-commit hook adds to a commit that starts nothing.

    python benchmarks/hook_latency.py [--rounds N] [--check]

Two ratios, each of medians over alternating rounds in one run (so drift in machine load hits both sides):

1. hook / interpreter: `mdspec hook post-commit` (the installed console script, as pre-commit calls it)
   on a non-spec commit with a warm cache, over `python -c pass`. Target: at most 2.0.
2. commit with mdspec / commit with a no-op: `git commit` of a small non-spec edit in a repository whose
   pre-commit post-commit hook is mdspec, over the same in a repository whose post-commit hook is a
   pre-commit `repo: local` hook running `true`. Target: at most 1.15.

Repositories live in a temp dir with a private HOME and PRE_COMMIT_HOME. mdspec's own modules are
byte-compiled first (`__pycache__` beside them), as `pip install` does for an installed mdspec: an editable
install under PYTHONDONTWRITEBYTECODE would otherwise compile the hook's modules from source on every call.
`--check` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HOOK_TARGET = 2.0
COMMIT_TARGET = 1.15

NOOP_CONFIG = """\
default_install_hook_types: [post-commit]
repos:
  - repo: local
    hooks:
      - id: noop
        name: noop
        entry: "true"
        language: system
        stages: [post-commit]
        always_run: true
        pass_filenames: false
        verbose: true
"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MDSPEC_", "PRE_COMMIT"))}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        PRE_COMMIT_HOME=str(tmp / "pre-commit-home"),
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    )
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def _repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir()
    _run(["git", "init", "-q", "-b", "main"], path, env)
    for k, v in (("user.name", "Bench"), ("user.email", "bench@example.com"), ("commit.gpgsign", "false")):
        _run(["git", "config", k, v], path, env)
    (path / "README.md").write_text("# bench\n")
    (path / "src").mkdir()
    (path / "src" / "counter.txt").write_text("0\n")
    _run(["git", "add", "-A"], path, env)
    _run(["git", "commit", "-q", "-m", "initial"], path, env)
    return path


def _mdspec_repo(path: Path, env: dict[str, str], mdspec: str) -> Path:
    _repo(path, env)
    _run([mdspec, "init"], path, env)
    # A command backend that would fail loudly: no run may start during the benchmark.
    (path / ".mdspec.toml").write_text('[agent]\nbackend = "command"\ncommand = "false"\n')
    _run(["git", "add", "-A"], path, env)
    _run(["git", "commit", "-q", "-m", "set up mdspec"], path, {**env, "MDSPEC_RUNNING": "1"})
    return path


def _noop_repo(path: Path, env: dict[str, str]) -> Path:
    _repo(path, env)
    (path / ".pre-commit-config.yaml").write_text(NOOP_CONFIG)
    _run([sys.executable, "-m", "pre_commit", "install", "--hook-type", "post-commit"], path, env)
    _run(["git", "add", "-A"], path, env)
    _run(["git", "commit", "-q", "-m", "set up the no-op hook"], path, env)
    return path


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _alternate(a: Callable[[], None], b: Callable[[], None], rounds: int) -> tuple[float, float]:
    """Medians (seconds) of `a` and `b`, run alternately, after one warm-up call each."""
    a()
    b()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(rounds):
        # Swap the order every round so neither side always runs on a cache the other just warmed.
        if i % 2:
            tb.append(_timed(b))
            ta.append(_timed(a))
        else:
            ta.append(_timed(a))
            tb.append(_timed(b))
    return statistics.median(ta), statistics.median(tb)


def _committer(repo: Path, env: dict[str, str]) -> Callable[[], None]:
    counter = repo / "src" / "counter.txt"

    def commit() -> None:
        counter.write_text(f"{int(counter.read_text()) + 1}\n")
        proc = subprocess.run(
            ["git", "commit", "-q", "-a", "-m", "bump"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0 or "Failed" in proc.stderr:
            raise SystemExit(f"git commit in {repo} failed or its hook did:\n{proc.stderr}")

    return commit


def _quiet(args: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> Callable[[], None]:
    def call() -> None:
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != expect:
            raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="measurements of each side (default 30)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    mdspec = shutil.which("mdspec", path=str(Path(sys.executable).parent)) or shutil.which("mdspec")
    if mdspec is None:
        raise SystemExit("the `mdspec` console script is not installed (pip install -e . first)")

    spec = importlib.util.find_spec("mdspec")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mdspec is not importable from this interpreter")
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)

    with tempfile.TemporaryDirectory(prefix="mdspec-bench-") as d:
        tmp = Path(d)
        env = _env(tmp)
        md = _mdspec_repo(tmp / "mdspec-repo", env, mdspec)
        noop = _noop_repo(tmp / "noop-repo", env)

        # 1. The hook entry point alone, on a non-spec HEAD (cache warmed by the warm-up call).
        _committer(md, env)()
        hook, python = _alternate(
            _quiet([mdspec, "hook", "post-commit"], md, env),
            _quiet([sys.executable, "-c", "pass"], md, env),
            args.rounds,
        )
        hook_ratio = hook / python

        # 2. Whole commits through pre-commit: mdspec's hook against a no-op hook.
        with_md, with_noop = _alternate(_committer(md, env), _committer(noop, env), args.rounds)
        commit_ratio = with_md / with_noop

        runs = md / ".git" / "mdspec" / "runs"
        if runs.exists() and any(runs.iterdir()):
            raise SystemExit("a run started during the benchmark: the commits were not meant to be spec commits")

    print(
        f"mdspec hook post-commit: {hook * 1000:.1f} ms  python -c pass: {python * 1000:.1f} ms  "
        f"ratio {hook_ratio:.2f} (target <= {HOOK_TARGET})"
    )
    print(
        f"git commit, mdspec hook: {with_md * 1000:.1f} ms  no-op hook: {with_noop * 1000:.1f} ms  "
        f"ratio {commit_ratio:.2f} (target <= {COMMIT_TARGET})"
    )
    print(f"({args.rounds} alternating rounds each; medians)")
    missed = hook_ratio > HOOK_TARGET or commit_ratio > COMMIT_TARGET
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
