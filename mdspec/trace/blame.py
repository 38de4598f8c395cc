"""`mdspec blame`'s data: for each line of a file, the commit that last changed it and, when that is a
generated commit, the spec commits it implements and their hunks (the spec words behind the line).

git blame does the line work. Each generated commit it names is resolved through its own trailers: a named
spec commit that is an ancestor of it is the one; otherwise (a rebased or cherry-picked history) the
history is read once and the spec commit is found by content (history.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mdspec.config import Config
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.git import Repo
from mdspec.trace import gitblame, sections
from mdspec.trace.gitblame import BadTarget, Target
from mdspec.trace.patches import PatchStream
from mdspec.trace.sections import SpecHunk

if TYPE_CHECKING:
    from mdspec.trace.history import History

Kind = Literal["generated", "hand", "uncommitted"]
# How a spec commit named by a generated commit's trailer was found: by its sha on the branch; by its
# content (a rebase gave it a new sha); by its sha off the branch (a squash merge's source branch); or, for
# a squash merge that carried the spec change itself, as the generated commit's own change.
Found = Literal["sha", "content", "elsewhere", "squashed"]
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


@dataclass(frozen=True)
class SpecRef:
    sha: str
    subject: str
    author: str
    time: int
    hunks: tuple[SpecHunk, ...]  # shortest first
    found: Found


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


def blame(repo: Repo, cfg: Config, target: Target, rev: str | None, started: gitblame.Blame | None = None) -> Blame:
    """Blame the file (with git blame already `started` by the caller, or started here). git's output is
    read as git makes it, and each commit is resolved the moment it first appears, so mdspec's work
    overlaps git's instead of following it."""
    running = started or gitblame.Blame(repo.top, target, rev)
    tip = repo.rev_parse(rev or "HEAD")
    resolver = _Resolver(repo, cfg, tip)
    owner: dict[int, str] = {}
    try:
        for e in running.entries():
            for n in range(e.first, e.first + e.count):
                owner[n] = e.sha
            when = int(e.head.get("author-time", "0") or 0)
            resolver.add(e.sha, e.head.get("summary", ""), e.head.get("author", ""), when)
    finally:
        code, stderr = running.close()
    origins = resolver.finish()
    if code != 0:
        raise BadTarget(f"{target.path}: {_blame_error(stderr, rev)}")
    text = _text(repo, target.path, tip if rev else None)
    return Blame(target.path, rev, tuple(_groups(owner, text)), origins)


def _text(repo: Repo, path: str, rev: str | None) -> list[str]:
    """The file's lines as blamed: from the commit, or from the checkout (uncommitted edits included)."""
    data = repo.blob_at(rev, path) if rev else _read(repo.top / path)
    return [ln.decode("utf-8", "replace") for ln in (data or b"").split(b"\n")]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _groups(owner: dict[int, str], text: list[str]) -> list[Lines]:
    groups: list[Lines] = []
    for n in sorted(owner):
        sha, line = owner[n], text[n - 1] if n - 1 < len(text) else ""
        if groups and groups[-1].sha == sha and groups[-1].last == n - 1:
            g = groups[-1]
            groups[-1] = Lines(g.first, n, sha, (*g.text, line))
        else:
            groups.append(Lines(n, n, sha, (line,)))
    return groups


def _blame_error(stderr: str, rev: str | None) -> str:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "git blame failed"
    text = text.removeprefix("fatal: ")
    if "no such path" in text or "no such file" in text.lower():
        where = f"in {rev}" if rev else "in the checkout or HEAD"
        return f"no such file {where}; give a tracked file's path"
    if "has only" in text:
        return f"{text}; give a range inside the file"
    return text


class _Resolver:
    """Origins of commits. The spec commits' patches are made by one git process that works while blame
    goes on; the whole history is read at most once, and only when a name must be found by content."""

    def __init__(self, repo: Repo, cfg: Config, tip: str) -> None:
        self.repo = repo
        self.cfg = cfg
        self.tip = tip
        self.watch = Globs(cfg.watch)
        self.patches = PatchStream(repo, cfg.watch)
        self._history: History | None = None
        self._origins: dict[str, tuple[Origin, tuple[tuple[str, Found], ...]]] = {}

    def add(self, sha: str, subject: str, author: str, when: int) -> None:
        if sha in self._origins:
            return
        if not sha:
            self._origins[sha] = (Origin("", "uncommitted", "not committed yet", "", 0), ())
            return
        message = self.repo.commit(sha).message
        named = trailers.implements(message)
        if not named:
            self._origins[sha] = (Origin(sha, "hand", subject, author, when), ())
            return
        run_id, check = trailers.run_and_check(message)
        found: list[tuple[str, Found]] = []
        missing: list[str] = []
        for spec, _pid in named:
            if self.repo.has_commit(spec) and self.repo.descends(sha, spec):
                found.append((spec, "sha"))
            else:
                missing.append(spec)
        if missing:
            found, missing = self._not_on_branch(sha, found, missing)
        for spec, _ in found:
            self.patches.add(spec)
        origin = Origin(sha, "generated", subject, author, when, run_id, check, (), tuple(missing))
        self._origins[sha] = (origin, tuple(found))

    def finish(self) -> dict[str, Origin]:
        hunks = self.patches.finish()
        specs: dict[str, SpecRef] = {}
        for _, found in self._origins.values():
            for sha, how in found:
                if sha not in specs:
                    info = self.repo.commit(sha)
                    cut = sorted(sections.with_sections(self.repo, sha, hunks.get(sha, [])), key=_shortest)
                    specs[sha] = SpecRef(sha, info.subject, info.author_name, info.time, tuple(cut), how)
        return {
            sha: dataclasses.replace(o, specs=tuple(specs[s] for s, _ in found))
            for sha, (o, found) in self._origins.items()
        }

    def _not_on_branch(
        self, sha: str, found: list[tuple[str, Found]], missing: list[str]
    ) -> tuple[list[tuple[str, Found]], list[str]]:
        """Named spec commits that are not ancestors of their generated commit: found by content in the
        history, else the named commit itself where this clone has it, else (a squash merge that carried
        the spec change with the code) the generated commit's own change on watched paths."""
        impl = next((g for g in self._read_history().generated if g.sha == sha), None)
        moved = [s for s in (impl.specs if impl else ()) if s not in {f for f, _ in found}]
        found = found + [(s, "content") for s in moved]
        missing = missing[len(moved) :]
        here = [s for s in missing if self.repo.has_commit(s)]
        found += [(s, "elsewhere") for s in here]
        missing = [s for s in missing if s not in here]
        if missing and self._carries_spec(sha):
            found.append((sha, "squashed"))
            missing = []
        return found, missing

    def _carries_spec(self, sha: str) -> bool:
        """Whether the generated commit itself changed watched paths (a squash merge of spec and code)."""
        return bool(self.repo.changed_matching(self.repo.commit(sha), self.watch))

    def _read_history(self) -> History:
        from mdspec.trace import history  # late: only a rewritten history needs it, and blame starts fast

        if self._history is None:
            self._history = history.load(self.repo, self.tip, self.cfg)
        return self._history


def _shortest(h: SpecHunk) -> tuple[int, str, int]:
    return (h.size, h.path, h.line)
