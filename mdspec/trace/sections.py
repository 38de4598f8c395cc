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


def with_sections(repo: Repo, sha: str, hunks: Sequence[Hunk]) -> list[SpecHunk]:
    """A commit's hunks, each with the section it sits in in the commit's version of its file."""
    heads: dict[str, list[tuple[int, str]]] = {}
    out: list[SpecHunk] = []
    for h in hunks:
        if h.path not in heads:
            blob = repo.blob_at(sha, h.path)
            heads[h.path] = headings(blob.decode("utf-8", "replace")) if blob is not None else []
        out += _split(h, heads[h.path])
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
