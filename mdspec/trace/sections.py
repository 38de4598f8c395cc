"""Spec hunks and the `## ` sections they sit in: the words of a spec commit that a line of code answers to.

A spec file's sections are its `## ` headings (level two: in a spec, `#` names the file's subject and
`###` is too fine to map code to). A hunk belongs to the section its first changed line sits in, in the
version the spec commit made; lines above the first `## ` heading belong to no section ("").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mdspec.git import Hunk, Repo


@dataclass(frozen=True)
class SpecHunk:
    path: str
    section: str  # the `## ` heading's text, "" above the first one
    line: int  # the first changed line in the spec commit's version of the file
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def size(self) -> int:
        """Lines with words in them, added or removed (blank lines say nothing)."""
        return sum(1 for t in (*self.added, *self.removed) if t.strip())


def headings(text: str) -> list[tuple[int, str]]:
    """(line number, heading text) of every `## ` heading, outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fence = ""
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[:3]
            fence = "" if fence == mark else (fence or mark)
            continue
        if not fence and line.startswith("## "):
            out.append((n, line[3:].strip().rstrip("#").strip()))
    return out


def section_at(heads: Sequence[tuple[int, str]], line: int) -> str:
    """The heading a line sits under (a heading line is in its own section)."""
    found = ""
    for n, text in heads:
        if n > line:
            break
        found = text
    return found


def spec_hunks(repo: Repo, sha: str, paths: Sequence[str]) -> list[SpecHunk]:
    """The hunks of a spec commit on its watched paths, each with its section."""
    return with_sections(repo, sha, repo.hunks(sha, paths))


def with_sections(repo: Repo, sha: str, hunks: Sequence[Hunk], heads: Headings | None = None) -> list[SpecHunk]:
    """A commit's hunks, each with the section it sits in in the commit's version of its file."""
    heads = heads or Headings(repo)
    out: list[SpecHunk] = []
    for h in hunks:
        out += _split(h, heads(sha, h.path))
    return out


def _split(h: Hunk, heads: Sequence[tuple[int, str]]) -> list[SpecHunk]:
    """The hunk cut where its added lines start a new section, so each piece names its own section (a new
    spec file is one hunk, and its sections are still told apart). Removed lines go with the first piece."""
    if not h.added:
        # A pure removal's new_start is the line before the gap; the line after it is where the words were.
        line = h.new_start + 1
        return [SpecHunk(h.path, section_at(heads, max(line, 1)), line, (), h.removed)]
    starts = {n for n, _ in heads}
    pieces: list[SpecHunk] = []
    first = 0
    for i in range(1, len(h.added) + 1):
        if i == len(h.added) or h.new_start + i in starts:
            line = h.new_start + first
            removed = h.removed if not pieces else ()
            pieces.append(SpecHunk(h.path, section_at(heads, line), line, h.added[first:i], removed))
            first = i
    # A piece of blank lines only (the blank line before a new heading) says nothing: keep the pieces with
    # words, or the first piece when none has any.
    worded = [p for p in pieces if p.size]
    return worded or pieces[:1]


class Headings:
    """`## ` headings of a file in a commit, read once per (commit, path)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.cache: dict[tuple[str, str], list[tuple[int, str]]] = {}

    def __call__(self, sha: str | None, path: str) -> list[tuple[int, str]]:
        if sha is None:
            return []
        key = (sha, path)
        if key not in self.cache:
            blob = self.repo.blob_at(sha, path)
            self.cache[key] = headings(blob.decode("utf-8", "replace")) if blob is not None else []
        return self.cache[key]


def spec_sections(repo: Repo, sha: str, paths: Sequence[str], heads: Headings | None = None) -> set[tuple[str, str]]:
    """(spec file, section) for every section a spec commit changed words in."""
    heads = heads or Headings(repo)
    info = repo.commit(sha)
    parent = info.parents[0] if info.parents else None
    found: set[tuple[str, str]] = set()
    touched: set[str] = set()
    for h in repo.hunks(sha, paths):
        touched.add(h.path)
        here: set[str] = set()
        new, old = heads(sha, h.path), heads(parent, h.path)
        here.update(section_at(new, h.new_start + i) for i, ln in enumerate(h.added) if ln.strip())
        here.update(section_at(old, h.old_start + i) for i, ln in enumerate(h.removed) if ln.strip())
        if not here:  # only blank lines: the section the change sits in
            here.add(section_at(new, max(h.new_start if h.added else h.new_start + 1, 1)))
        found.update((h.path, s) for s in here)
    # A binary spec file, or one whose mode alone changed, has no hunks but was changed all the same.
    found.update((p, "") for p in paths if p not in touched)
    return found
