"""`mdspec blame`'s data: for each line of a file, the commit that last changed it and, when that is a
generated commit, the spec commits it implements and their hunks (the spec words behind the line).

git blame does the line work. Each generated commit it names is resolved through its own trailers: a named
spec commit that is an ancestor of it is the one; otherwise (a rebased or cherry-picked history) the
history is read once and the spec commit is found by content (history.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mdspec import git
from mdspec.config import Config
from mdspec.errors import FatalError
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.git import Repo
from mdspec.run import pending
from mdspec.trace import history, sections
from mdspec.trace.sections import SpecHunk

Kind = Literal["generated", "hand", "uncommitted"]
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


@dataclass(frozen=True)
class Target:
    path: str  # relative to the repository's top, with "/"
    first: int | None  # the line range asked for, 1-based, inclusive; None: the whole file
    last: int | None


@dataclass(frozen=True)
class SpecRef:
    sha: str
    subject: str
    author: str
    time: int
    hunks: tuple[SpecHunk, ...]  # shortest first
    by_content: bool  # found by its content: the trailer names a sha this history no longer has


@dataclass(frozen=True)
class Origin:
    """A commit that last changed some of the lines."""

    sha: str  # "" for lines not committed yet
    kind: Kind
    subject: str
    author: str
    time: int
    run_id: str = ""
    check: str = ""
    specs: tuple[SpecRef, ...] = ()
    missing: tuple[str, ...] = ()  # spec shas named but found neither by sha nor by content


@dataclass(frozen=True)
class Lines:
    """Consecutive lines last changed by one commit."""

    first: int
    last: int
    sha: str  # "" for lines not committed yet
    text: tuple[str, ...]


@dataclass(frozen=True)
class Blame:
    path: str
    rev: str | None  # None: the file as it is in the checkout
    lines: tuple[Lines, ...]
    origins: dict[str, Origin]


class BadTarget(FatalError):
    pass


def parse_target(repo: Repo, arg: str, cwd: Path) -> Target:
    """FILE, FILE:LINE or FILE:FIRST-LAST; a file whose own name ends in `:N` is taken as a file."""
    path, first, last = arg, None, None
    head, sep, tail = arg.rpartition(":")
    m = _RANGE.fullmatch(tail) if sep else None
    if m and not (cwd / arg).exists():
        path, first = head, int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if first < 1 or last < first:
            raise BadTarget(f"{arg}: expected FILE:LINE or FILE:FIRST-LAST with 1 <= FIRST <= LAST")
    full = (cwd / path).resolve()
    try:
        rel = full.relative_to(repo.top.resolve())
    except ValueError:
        raise BadTarget(f"{path}: not inside the repository at {repo.top}") from None
    return Target(rel.as_posix(), first, last)


def blame(repo: Repo, cfg: Config, target: Target, rev: str | None) -> Blame:
    lines, meta = _git_blame(repo, target, rev)
    origins: dict[str, Origin] = {}
    tip = repo.rev_parse(rev or "HEAD")
    resolver = _Resolver(repo, cfg, tip)
    for sha, (subject, author, when) in meta.items():
        origins[sha] = resolver.origin(sha, subject, author, when)
    return Blame(target.path, rev, tuple(lines), origins)


def _git_blame(repo: Repo, target: Target, rev: str | None) -> tuple[list[Lines], dict[str, tuple[str, str, int]]]:
    args = ["blame", "--porcelain"]
    if target.first is not None:
        args += ["-L", f"{target.first},{target.last}"]
    if rev:
        args.append(rev)
    proc = git.run([*args, "--", target.path], repo.top, check=False, errors="surrogateescape")
    if proc.returncode != 0:
        raise BadTarget(f"{target.path}: {_blame_error(proc.stderr, target, rev)}")
    return _parse_porcelain(proc.stdout)


def _blame_error(stderr: str, target: Target, rev: str | None) -> str:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "git blame failed"
    text = text.removeprefix("fatal: ")
    if "no such path" in text or "no such file" in text.lower():
        where = f"in {rev}" if rev else "in the checkout or HEAD"
        return f"no such file {where}; give a tracked file's path"
    if "has only" in text:
        return f"{text}; give a range inside the file"
    return text


def _parse_porcelain(out: str) -> tuple[list[Lines], dict[str, tuple[str, str, int]]]:
    """The line groups and, per commit, (subject, author, author time) from `git blame --porcelain`."""
    meta: dict[str, dict[str, str]] = {}
    per_line: list[tuple[int, str, str]] = []
    sha = ""
    final = 0
    for raw in out.split("\n"):
        if raw.startswith("\t"):
            per_line.append((final, sha, raw[1:]))
            continue
        parts = raw.split(" ")
        if len(parts) >= 3 and len(parts[0]) in git.HEX_LENGTHS.values() and parts[1].isdigit():
            sha, final = parts[0], int(parts[2])
            meta.setdefault(sha, {})
            continue
        key, _, value = raw.partition(" ")
        if sha and key in ("summary", "author", "author-time"):
            meta[sha].setdefault(key, value)
    groups: list[Lines] = []
    for n, s, text in per_line:
        key = "" if set(s) == {"0"} else s
        if groups and groups[-1].sha == key and groups[-1].last == n - 1:
            g = groups[-1]
            groups[-1] = Lines(g.first, n, key, (*g.text, text))
        else:
            groups.append(Lines(n, n, key, (text,)))
    info = {
        ("" if set(s) == {"0"} else s): (m.get("summary", ""), m.get("author", ""), int(m.get("author-time", "0") or 0))
        for s, m in meta.items()
    }
    return groups, info


class _Resolver:
    """Origins of commits, reading the whole history at most once (only when a name must be found by content)."""

    def __init__(self, repo: Repo, cfg: Config, tip: str) -> None:
        self.repo = repo
        self.cfg = cfg
        self.tip = tip
        self.watch = Globs(cfg.watch)
        self._history: history.History | None = None
        self._specs: dict[str, SpecRef] = {}

    def origin(self, sha: str, subject: str, author: str, when: int) -> Origin:
        if not sha:
            return Origin("", "uncommitted", "not committed yet", "", 0)
        message = self.repo.commit(sha).message
        named = trailers.implements(message)
        if not named:
            return Origin(sha, "hand", subject, author, when)
        run_id, check = history.generated_fields(message)
        found: list[SpecRef] = []
        missing: list[str] = []
        for spec, _pid in named:
            if self.repo.has_commit(spec) and self.repo.descends(sha, spec):
                found.append(self._spec(spec, by_content=False))
            else:
                missing.append(spec)
        if missing:
            impl = next((g for g in self._read_history().generated if g.sha == sha), None)
            moved = [s for s in (impl.specs if impl else ()) if s not in {f.sha for f in found}]
            found += [self._spec(s, by_content=True) for s in moved]
            missing = missing[len(moved) :]
        return Origin(sha, "generated", subject, author, when, run_id, check, tuple(found), tuple(missing))

    def _read_history(self) -> history.History:
        if self._history is None:
            self._history = history.load(self.repo, self.tip, self.cfg)
        return self._history

    def _spec(self, sha: str, by_content: bool) -> SpecRef:
        if sha not in self._specs:
            info = self.repo.commit(sha)
            paths = pending.spec_paths(self.repo, info, self.watch)
            hunks = sorted(sections.spec_hunks(self.repo, sha, paths), key=lambda h: (h.size, h.path, h.line))
            self._specs[sha] = SpecRef(sha, info.subject, info.author_name, info.time, tuple(hunks), by_content)
        return self._specs[sha]
