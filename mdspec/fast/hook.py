"""The post-commit fast path (DESIGN §3.1): decide in a few milliseconds, enqueue, start a worker.

Runs on every commit, so it imports only `os`/`sys` and mdspec's import-free helpers: no click, pygit2,
anthropic, subprocess, re or tomllib on the common path. The watched globs come from a small cache file
keyed by the config file's text; only a cache miss loads the full config, through the `SlowPath` the
caller hands in (mdspec/commands/hook.py), so this package never imports the rest of mdspec.
"""

from __future__ import annotations

import os
import sys

from mdspec.fast import atomic, gitenv, paths, trailers, triggers
from mdspec.fast.globs import Globs

CACHE_NAME = "hook-cache"
READABLE_SHA_LENGTHS = (40,)  # SHA-1 only: what the worker's libgit2 can open


class SlowPath:
    """What the hook needs from the rest of mdspec, only on the paths that are not fast.

    A class to subclass rather than callables to pass: typing's Callable would cost the import of
    `typing` (about 14 ms) on every commit.
    """

    def load_config(self, cfg_path: str) -> tuple[list[str], str]:
        """(watch globs, how a spec commit runs: "1" background, "0" foreground, "ci" left to CI) from the
        config file; raises ConfigError (a ValueError) when invalid."""
        raise NotImplementedError

    def run_foreground(self, top: str) -> int:
        """Run the agent now, inside the commit; the exit status of that run."""
        raise NotImplementedError

    def write_traceback(self, exc: BaseException) -> str:
        """Keep the traceback of a bug in a log file; that file's path."""
        raise NotImplementedError


def _config_file(top: str) -> tuple[str, str | None] | None:
    """(path, text) of the repository's config file, or None; text is None when it cannot be read.

    The same lookup as config.find, repeated here on purpose: importing config costs tomllib and
    dataclasses, which the fast path must not pay on every commit.
    """
    own = os.path.join(top, ".mdspec.toml")
    if os.path.isfile(own):
        try:
            with open(own, encoding="utf-8") as f:
                return own, f.read()
        except (OSError, UnicodeDecodeError):
            return own, None  # the slow path reports it, naming the file
    py = os.path.join(top, "pyproject.toml")
    try:
        with open(py, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    return (py, text) if "[tool.mdspec" in text else None


def _settings(
    slow: SlowPath,
    state_dir: str,
    cfg_path: str,
    cfg_text: str | None,
) -> tuple[list[str], str, str | None]:
    """(watch globs, how a spec commit runs, a problem writing the cache) from the cache, or from the config
    (then cached). How: "1" in the background, "0" in the foreground, "ci" left to CI. Raises ConfigError.

    The cache holds the config text it was made from and is used only while the file still reads the
    same: size and mtime alone miss a same-size edit within one timestamp tick, or a copy that keeps mtime.
    Layout: `path<TAB>how<TAB>number of globs`, one glob a line, then the config text verbatim.
    """
    cache = os.path.join(state_dir, CACHE_NAME)
    if cfg_text is not None:
        try:
            with open(cache, encoding="utf-8") as f:
                header, rest = f.read().split("\n", 1)
            path, bg, count = header.split("\t")
            n = int(count)
            parts = rest.split("\n", n)
            if path == cfg_path and len(parts) == n + 1 and parts[n] == cfg_text:
                return parts[:n], bg, None
        except (OSError, UnicodeDecodeError, ValueError):
            pass
    watch, how = slow.load_config(cfg_path)  # the slow path: tomllib and validation
    problem = None
    if cfg_text is not None and not any("\n" in g for g in watch):
        try:  # the cache only saves time: a commit goes on without it, and the user hears why
            os.makedirs(state_dir, exist_ok=True)
            header = f"{cfg_path}\t{how}\t{len(watch)}"
            atomic.write_atomic(cache, "\n".join([header, *watch, cfg_text]), durable=False)
        except OSError as exc:
            problem = _os_problem(exc)
    return watch, how, problem


def _os_problem(exc: OSError) -> str:
    """`path: reason` of an OSError, for a one-line message."""
    where = exc.filename2 or exc.filename  # a rename names its target second: that is what is in the way
    where = where if isinstance(where, str) else ""
    why = exc.strerror or type(exc).__name__
    return f"{where}: {why}" if where else why


def _git(args: list[str], cwd: str, git_dir: str) -> bytes:
    """Run git and return stdout, without importing subprocess (posix_spawn and a pipe)."""
    env = gitenv.clean()
    # diff-tree reads the index although it never uses it: 4 ms on 50,000 files. A missing index is empty.
    env["GIT_INDEX_FILE"] = os.path.join(git_dir, "mdspec-no-index")
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        pid = os.posix_spawnp(
            "git",
            ["git", "-C", cwd, *args],
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, w, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
            ],
        )
    finally:
        os.close(w)
        os.close(devnull)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(f"git {' '.join(args)} failed")
    return b"".join(chunks)


def _committing_git_pid() -> int | None:
    """The `git` process that ran this hook (our parent, or pre-commit's parent), found through /proc."""
    pid = os.getppid()
    for _ in range(5):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            return None
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm == "git":
            return pid
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if pid <= 1:
            return None
    return None


def spawn_worker(top: str, state_dir: str, wait_pid: int | None) -> int:
    """A detached worker: new session, no inherited stdio (pre-commit waits for its output pipe to close)."""
    os.makedirs(state_dir, exist_ok=True)
    log = os.open(os.path.join(state_dir, "worker.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    env = gitenv.clean()
    argv = [sys.executable, "-m", "mdspec", "worker"]
    if wait_pid:
        argv += ["--wait-pid", str(wait_pid)]
    try:
        return os.posix_spawn(
            sys.executable,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log)
        os.close(devnull)


def post_commit(slow: SlowPath) -> int:
    """`mdspec hook post-commit`. Exit status 0 unless the user must act (no config, bad config)."""
    if os.environ.get("MDSPEC_RUNNING"):
        return 0  # a commit made by a run, or by something a run started
    dirs = paths.discover(os.getcwd())
    if dirs is None:
        print("mdspec: error: the post-commit hook ran outside a git repository", file=sys.stderr)
        return 1
    if paths.operation_in_progress(dirs.git_dir):
        return 0
    branch = paths.head_ref(dirs.git_dir)
    if branch is None:
        return 0  # detached HEAD: no branch to land on
    found = _config_file(dirs.top)
    if found is None:
        print(
            f"mdspec: error: no .mdspec.toml in {dirs.top}: run `mdspec init` (or remove the mdspec hook)",
            file=sys.stderr,
        )
        return 1
    cfg_path, cfg_text = found
    try:
        watch, how, cache_problem = _settings(slow, dirs.state_dir, cfg_path, cfg_text)
    except Exception as exc:  # noqa: BLE001 - ConfigError, OSError alike: one line (the fast path imports no errors module)
        print(f"mdspec: error: {exc}", file=sys.stderr)
        return 1
    head = _head_change(dirs.top, dirs.git_dir)
    if head is None:
        return 0  # unborn branch or unreadable HEAD: nothing was committed that we could read
    sha, parents, message, changes = head
    if len(parents) > 1 or trailers.is_generated(message) or not _watched(changes, watch):
        return _warn_cache(cache_problem, dirs.state_dir)
    return _start(slow, dirs, branch, sha, how, changes, cfg_path, cache_problem)


def _head_change(top: str, git_dir: str) -> tuple[str, list[str], str, dict[str, str]] | None:
    """(sha, parents, message, path -> status letter) of HEAD against its first parent; None when git
    cannot read HEAD. One git process."""
    try:
        out = _git(
            [
                "diff-tree",
                "-r",
                "-z",
                "--root",
                "--no-renames",
                "--name-status",
                "--always",
                "--format=%H%x00%P%x00%B%x00",
                "HEAD",
            ],
            top,
            git_dir,
        )
    except OSError:
        return None
    fields = out.decode("utf-8", "replace").split("\0")
    if len(fields) < 3:
        return "", [], "", {}  # nothing git could describe: nothing to run
    rest = [f.strip("\n") for f in fields[3:] if f.strip("\n")]
    return fields[0].strip(), fields[1].split(), fields[2], dict(zip(rest[1::2], rest[0::2], strict=False))


def _watched(changes: dict[str, str], watch: list[str]) -> bool:
    """Whether the commit changed a watched path (a TASK.md deleted, alone, does not count)."""
    globs = Globs(watch)
    watched = {p: st for p, st in changes.items() if globs.matches(p)}
    return bool(watched) and watched != {"TASK.md": "D"}


def _start(
    slow: SlowPath,
    dirs: paths.RepoDirs,
    branch: str,
    sha: str,
    how: str,
    changes: dict[str, str],
    cfg_path: str,
    cache_problem: str | None,
) -> int:
    """Queue the spec commit `sha` and start its run: in a detached worker, in the foreground, or not at
    all (CI mode, the set-up commit). The hook's exit status."""
    if len(sha) not in READABLE_SHA_LENGTHS:
        # A SHA-256 repository: the worker reads git through libgit2, which opens SHA-1 repositories
        # only. Say so here rather than queue a commit no run can ever take.
        print(
            f"mdspec: error: {sha[:10]} not queued: this repository uses SHA-256 object names, which mdspec "
            "cannot work with (libgit2 reads SHA-1 repositories only); remove the mdspec post-commit hook",
            file=sys.stderr,
        )
        return 0
    if changes.get(os.path.relpath(cfg_path, dirs.top)) == "A":
        print(
            f"mdspec: {sha[:10]} sets mdspec up; spec commits from now on are implemented "
            "(`mdspec run HEAD` implements this one too)"
        )
        return 0
    short = sha[:10]
    if how == "ci":  # [ci] mode = "ci": the team's CI compiles it after the push; nothing runs here
        _warn_cache(cache_problem, dirs.state_dir)
        print(f"mdspec: spec commit {short} will be compiled by CI when pushed (`mdspec run` compiles it here)")
        return 0
    try:
        triggers.enqueue(dirs.state_dir, sha, branch)
    except OSError as exc:
        print(
            f"mdspec: error: spec commit {short} not queued ({_os_problem(exc)}): make {dirs.state_dir} a "
            "writable directory, then `mdspec run` implements it",
            file=sys.stderr,
        )
        return 0
    _warn_cache(cache_problem, dirs.state_dir)
    if how == "0" or os.environ.get("MDSPEC_FOREGROUND"):
        print(f"mdspec: spec commit {short}: running the agent now (foreground)", flush=True)
        return slow.run_foreground(dirs.top)
    try:
        spawn_worker(dirs.top, dirs.state_dir, _committing_git_pid())
    except OSError as exc:
        print(
            f"mdspec: error: spec commit {short} is queued but no worker started ({_os_problem(exc)}): fix "
            "that, then `mdspec run` implements it",
            file=sys.stderr,
        )
        return 0
    print(
        f"mdspec: spec commit {short} queued; the agent runs in the background. "
        "Follow it: `mdspec status` or `mdspec log -f`"
    )
    return 0


def _warn_cache(problem: str | None, state_dir: str) -> int:
    if problem:
        cache = os.path.join(state_dir, CACHE_NAME)
        print(
            f"mdspec: warning: cannot write the hook cache ({problem}): make {state_dir} a writable "
            f"directory and {cache} a plain file (commits are slower until then)",
            file=sys.stderr,
        )
    return 0


def post_commit_guarded(slow: SlowPath) -> int:
    """post_commit, and never a traceback inside `git commit`: a bug is one line, the traceback a log."""
    try:
        return post_commit(slow)
    except Exception as exc:  # noqa: BLE001 - a bug in the hook must never fail the commit it follows
        log = slow.write_traceback(exc)
        print(
            f"mdspec: internal error in the post-commit hook: {type(exc).__name__}: {exc} (traceback in "
            f"{log}); the commit is made, `mdspec run` implements it",
            file=sys.stderr,
        )
        return 0
