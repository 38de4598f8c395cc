"""FatalError and the top-level error handler.

Expected failures raise a FatalError subclass: one line on stderr, exit 1 (a failed git command's whole
command line and output go to the log, and the line says where). Anything else is a bug: one line
pointing at a log file that keeps the traceback, with mdspec's, git's and Python's versions and the
platform. `MDSPEC_RAISE=1` re-raises instead (for debugging).
"""

from __future__ import annotations

import errno
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path


class FatalError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code = 1

    def details(self) -> str | None:
        """More than the one line, for the log (a failed git's whole command and output), or None."""
        return None


class NotARepository(FatalError):
    pass


class ConfigError(FatalError):
    pass


class GitError(FatalError):
    """git failed. The message is one line; `command` and `output` keep the whole story for the log."""

    def __init__(self, message: str, command: Sequence[str] = (), output: str = "", cwd: str = "") -> None:
        super().__init__(message)
        self.command = tuple(command)
        self.output = output
        self.cwd = cwd

    def details(self) -> str | None:
        if not self.command:
            return None
        where = f" (in {self.cwd})" if self.cwd else ""
        return f"command: {shlex.join(self.command)}{where}\noutput:\n{self.output.rstrip()}\n"


class SigningError(GitError):
    """The user signs commits and signing one failed; the message is the signer's own, on one line."""


class UnsupportedRepository(NotARepository):
    """A repository mdspec cannot work in (SHA-256 object names): said once, in one line."""


class BackendError(FatalError):
    pass


def error_log_path() -> Path:
    """Where tracebacks go: the repository's state dir when there is one, else the temp dir."""
    from mdspec.fast import paths  # late: paths is cheap but not needed on the happy path

    state = paths.find_state_dir(os.getcwd())
    if state is not None and os.path.isdir(os.path.dirname(state)):
        return Path(state) / "error.log"
    return Path(tempfile.gettempdir()) / f"mdspec-error-{os.getuid()}.log"


def _git_version() -> str:
    import subprocess  # late: only on the way out of a failure

    try:
        proc = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"git unavailable ({type(exc).__name__})"
    return proc.stdout.strip() or f"git --version said nothing (exit {proc.returncode})"


def versions() -> str:
    """One line for a report of a failure: mdspec's, git's and Python's versions, and the platform."""
    import platform  # late: only on the way out of a failure

    from mdspec import __version__

    return (
        f"mdspec {__version__}; {_git_version()}; Python {platform.python_version()} "
        f"({sys.executable}); {platform.platform()}"
    )


def _append_log(body: str) -> Path:
    path = error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()} argv {sys.argv!r}\n")
            f.write(f"versions: {versions()}\n")
            f.write(body)
    except OSError:
        pass
    return path


def write_traceback(exc: BaseException) -> Path:
    """Append the traceback of a bug, with the versions a report needs, to the error log."""
    return _append_log("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def write_details(exc: FatalError) -> Path | None:
    """Append what an expected failure leaves out of its one line (a failed git's output), if anything."""
    more = exc.details()
    if more is None:
        return None
    return _append_log(f"{type(exc).__name__}: {exc}\n{more}")


BROKEN_PIPE_EXIT = 141  # what a shell reports for a process ended by SIGPIPE, as `git log | head` is


def silence_stdout() -> None:
    """Point stdout at /dev/null: the reader went away (`mdspec log | head -1`), and Python's final flush
    would otherwise fail again and print "Exception ignored … BrokenPipeError" on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def run_guarded(fn: Callable[[], int]) -> int:
    """Call `fn`, turning exceptions into one-line messages and exit codes."""
    try:
        return fn()
    except BrokenPipeError:
        # Whoever read our output stopped reading: a normal end for a pager or `head`, not an error.
        silence_stdout()
        return BROKEN_PIPE_EXIT
    except FatalError as exc:
        if os.environ.get("MDSPEC_RAISE"):
            raise
        log = write_details(exc)
        print(f"mdspec: error: {exc}" + (f" (git's full output in {log})" if log else ""), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mdspec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence
        if os.environ.get("MDSPEC_RAISE"):
            raise
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # A full disk is the machine's state, not a bug: one line, and nothing more written to it.
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"mdspec: error: no space left on device{where}: free some space, then try again", file=sys.stderr)
            return 1
        log = write_traceback(exc)
        print(f"mdspec: internal error: {type(exc).__name__}: {exc} (traceback in {log})", file=sys.stderr)
        return 2
