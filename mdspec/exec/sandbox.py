"""The sandbox for every command a run executes (agent shell, command backend, check): bubblewrap.

Inside: the whole filesystem read-only; the worktree writable except its protected paths; a private
/tmp; the repository's git dir read-only, the worktree's own admin dir included (see `build`);
home-directory secrets hidden (directories behind an empty tmpfs, files behind an empty file); no
network unless `network = true`; a new PID namespace so the process tree dies with the run. Without
bwrap, `auto` runs unsandboxed (and the run record says so), `bwrap` refuses to start.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mdspec.errors import FatalError
from mdspec.fast import paths
from mdspec.fast.globs import Globs

# Relative to $HOME: credentials and tokens a command has no business reading.
HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".config",
    ".netrc",
    ".git-credentials",
    ".gnupg",
    ".docker",
    ".kube",
    ".pypirc",
    ".npmrc",
    ".gitconfig",
    ".anthropic",
)


class SandboxUnavailable(FatalError):
    pass


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """bwrap's path when it is installed and can actually create a sandbox here (user namespaces)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return None
    try:
        probe = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "--die-with-parent", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if probe.returncode == 0 else None


def will_confine(mode: str) -> bool:
    """Whether a run with the config's `sandbox` mode runs its commands inside bubblewrap."""
    return mode != "off" and bwrap_path() is not None


@dataclass(frozen=True)
class Sandbox:
    """How to wrap a command; `prefix` is empty when running unsandboxed."""

    prefix: tuple[str, ...]
    mode: str  # "bwrap" or "off"
    warning: str | None = None  # set when `auto` found no bwrap

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]


def hidden_secret(path: str, home: str | None = None) -> str | None:
    """The hidden home entry (`.ssh`, `.config`, …) that `path` is under, or None."""
    home = home if home is not None else os.environ.get("HOME")
    if not home:
        return None
    for p in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        for name in HOME_SECRETS:
            secret = os.path.join(home, name)
            if p == secret or p.startswith(secret + "/"):
                return name
    return None


def hidden_because(path: str, home: str | None = None) -> str | None:
    """Why `path` (absolute, as seen outside) cannot be seen inside the sandbox, or None if it can."""
    secret = hidden_secret(path, home)
    if secret:
        return f"the sandbox hides ~/{secret}"
    for p in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        if p == "/tmp" or p.startswith("/tmp/"):
            return "the sandbox has a private /tmp"
    return None


def allow_write(prefix: Sequence[str], path: Path, flag: str = "--bind") -> tuple[str, ...]:
    """`prefix` (a bwrap command line from `build`, or empty) with `path` writable as well."""
    if "--chdir" not in prefix:
        return tuple(prefix)
    i = list(prefix).index("--chdir")
    return (*prefix[:i], flag, str(path), str(path), *prefix[i:])


def allow_read(prefix: Sequence[str], path: Path) -> tuple[str, ...]:
    """`prefix` with `path` visible read-only: for what lives under the sandbox's private /tmp."""
    return allow_write(prefix, path, "--ro-bind")


def _protected_mounts(worktree: Path, protected: Globs) -> list[Path]:
    """Existing paths in the worktree to mount read-only: whole directories where a glob covers them.

    Symlinks are left out: bwrap would bind whatever they point at (a file outside the repository, or
    nothing at all, which fails the sandbox's start). Writing through such a link reaches only its target,
    which is read-only outside the worktree and unprotected inside it; a link the command replaces is
    restored by the post-run guard."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(worktree):
        rel_dir = os.path.relpath(dirpath, worktree)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        if rel_dir == "" and ".git" in dirnames:
            dirnames.remove(".git")
        keep = []
        for d in dirnames:
            rel = rel_dir + d
            if (Path(dirpath) / d).is_symlink():
                continue  # see above; os.walk does not descend into it either
            if protected.matches(rel + "/\0probe") and protected.matches(rel):
                out.append(Path(dirpath) / d)  # everything under it is protected
            elif protected.could_contain(rel):
                keep.append(d)
        dirnames[:] = keep
        out.extend(
            Path(dirpath) / f
            for f in filenames
            if protected.matches(rel_dir + f) and not (Path(dirpath) / f).is_symlink()
        )
    return out


def _empty_file(common_dir: Path) -> Path:
    """An empty file under the state dir to bind over home-directory secrets that are files."""
    path = common_dir / paths.STATE_DIRNAME / "sandbox-empty"
    if not path.is_file() or path.stat().st_size:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return path


def _hidden_secrets(home: str | None, wt: Path, common: Path) -> list[str]:
    """bwrap arguments that hide the home directory's secrets: an empty tmpfs over a directory, an empty
    file over a file."""
    args: list[str] = []
    if not home or not os.path.isdir(home):
        return args
    empty: Path | None = None
    for name in HOME_SECRETS:
        secret = os.path.join(home, name)
        if os.path.isdir(secret) and not wt.is_relative_to(Path(secret).resolve()):
            args += ["--tmpfs", secret]
        elif os.path.isfile(secret):
            # Not /dev/null: bind mounts are nodev, so reading it would fail with EACCES, and git treats
            # an unreadable ~/.gitconfig as fatal. An empty regular file reads as "nothing here".
            empty = empty or _empty_file(common)
            args += ["--ro-bind", str(empty), secret]
    return args


def _readonly_gitfile(wt: Path, common: Path) -> list[str]:
    """bwrap arguments that make the worktree's `.git` file, and the admin dir it names when that lies
    outside the common git dir, read-only."""
    args: list[str] = []
    gitfile = wt / ".git"
    if gitfile.is_file():
        admin = gitfile.read_text(encoding="utf-8").removeprefix("gitdir:").strip()
        admin_path = (wt / admin).resolve()
        if admin_path.is_dir() and not admin_path.is_relative_to(common):
            args += ["--ro-bind", str(admin_path), str(admin_path)]
        args += ["--ro-bind", str(gitfile), str(gitfile)]
    return args


def build(
    mode: str,
    worktree: Path,
    common_dir: Path,
    protected: Globs,
    network: bool,
    home: str | None = None,
) -> Sandbox:
    """The sandbox for one run (`mode` is the config's `sandbox`: auto, bwrap or off)."""
    if mode == "off":
        return Sandbox((), "off")
    exe = bwrap_path()
    if exe is None:
        if mode == "bwrap":
            raise SandboxUnavailable(
                'sandbox = "bwrap" but bubblewrap is not usable here: install it (Debian: apt-get install '
                'bubblewrap) or set sandbox = "auto" in .mdspec.toml'
            )
        return Sandbox((), "off", "bubblewrap (bwrap) is not installed: commands ran without a sandbox")
    wt = worktree.resolve()
    common = common_dir.resolve()
    args = [exe, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not network:
        args.append("--unshare-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # Keep the interpreters visible even when they live under /tmp (a virtualenv made there).
    for prefix in sorted({sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}):
        if prefix.startswith("/tmp/") and os.path.isdir(prefix):
            args += ["--ro-bind", prefix, prefix]
    args += _hidden_secrets(home if home is not None else os.environ.get("HOME"), wt, common)
    # The repository's git dir is read-only (hooks, config, refs, objects) and so is the worktree's admin
    # dir inside it: mdspec itself runs git in the worktree outside the sandbox afterwards, so a writable
    # `commondir` there could point that git at a config of the agent's making (a `filter` or
    # `core.fsmonitor` command runs unsandboxed), and a `logs/HEAD` swapped for a symlink would have the
    # next checkout append to a file of the user's. git status and diff still work; commands that write the
    # index or objects (add, commit, checkout -- file) fail, and mdspec commits the files as they are anyway.
    # Then the worktree writable, then its protected paths read-only. The user's checkout is read-only
    # like the rest (bound again in case it lives under /tmp).
    top = common.parent if common.name == ".git" else None
    if top is not None and top.is_dir():
        args += ["--ro-bind", str(top), str(top)]
    args += ["--ro-bind", str(common), str(common)]
    args += ["--bind", str(wt), str(wt)]
    args += _readonly_gitfile(wt, common)
    for p in _protected_mounts(wt, protected):
        args += ["--ro-bind", str(p), str(p)]
    args += ["--chdir", str(wt), "--"]
    return Sandbox(tuple(args), "bwrap")
