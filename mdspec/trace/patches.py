"""Spec commits' patches on watched paths, made by one `git diff-tree --stdin` for many commits.

Commits are handed in as they become known and git diffs them on its own core while mdspec goes on (blame
resolves commits while git blame still runs); `finish` reads every patch at once. Output goes to a file,
not a pipe, so neither side can block the other whatever the sizes.
"""

from __future__ import annotations

import codecs
import re
import subprocess
import tempfile
from collections.abc import Iterable

from mdspec import git
from mdspec.fast.globs import Globs
from mdspec.git import Hunk, Repo

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# Options that pin the patch text whatever the user's config says: no context, no renames, plain myers.
# (libgit2, which makes the single-commit hunks in git.py, has no indent heuristic: git's is turned off.)
_DIFF = ["-p", "--root", "-U0", "--no-renames", "--no-ext-diff", "--no-textconv", "--no-color"]
_DIFF += ["--diff-algorithm=myers", "--no-indent-heuristic"]


def _prefix(glob: str) -> str:
    """The literal directory a glob's matches all sit under ("" for a glob that starts with a wildcard)."""
    parts = glob.strip().strip("/").split("/")
    literal: list[str] = []
    for p in parts:
        if any(c in p for c in "*?["):
            break
        literal.append(p)
    return "/".join(literal)


class PatchStream:
    def __init__(self, repo: Repo, watch: Iterable[str]) -> None:
        self.repo = repo
        patterns = list(watch)
        self.globs = Globs(patterns)
        prefixes = [_prefix(g) for g in patterns]
        # A superset of the watched paths as literal pathspecs (exact matches are filtered here after).
        spec = [] if "" in prefixes else sorted(set(prefixes))
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - lives until finish(), which closes it
        self._asked: set[str] = set()
        self._proc = subprocess.Popen(
            ["git", "-c", "core.quotePath=false", "--literal-pathspecs", "diff-tree", "--stdin", *_DIFF, "--", *spec],
            cwd=repo.top,
            env=git.clean_env(),
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=subprocess.DEVNULL,
        )

    def add(self, sha: str) -> None:
        if sha in self._asked or self._proc.stdin is None:
            return
        self._asked.add(sha)
        self._proc.stdin.write(f"{sha}\n".encode())

    def finish(self) -> dict[str, list[Hunk]]:
        """sha -> its hunks on watched paths (against its first parent), for every commit added."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait()
        self._out.seek(0)
        text = self._out.read().decode("utf-8", "replace")
        self._out.close()
        return _parse(text, self._asked, self.globs)


def _path(field: str) -> str:
    """A path from a `--- a/…` or `+++ b/…` line, unquoting git's C-style quoting. git ends the line with
    a tab when the name has a space (for patch(1)); a name that itself ends in a tab is quoted."""
    field = field.removesuffix("\t")
    if field.startswith('"') and field.endswith('"'):
        raw = codecs.escape_decode(field[1:-1].encode("utf-8"))[0]
        field = bytes(raw).decode("utf-8", "replace")
    return field[2:] if field[:2] in ("a/", "b/") else field


def _parse(text: str, shas: set[str], globs: Globs) -> dict[str, list[Hunk]]:
    """Hunks per commit. A hunk's lines are counted off by its header (`@@ -a,b +c,d @@`), so a line of
    the file that looks like a header (`--- x`) is read as the content it is."""
    out: dict[str, list[Hunk]] = {s: [] for s in shas}
    current: list[Hunk] = []
    path = old_path = ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line in shas:  # diff-tree names each commit before its patch
            current, path = out[line], ""
        elif line.startswith("--- "):
            old_path = _path(line[4:])
        elif line.startswith("+++ "):
            new = line[4:]
            path = old_path if new == "/dev/null" else _path(new)
        elif (m := _HUNK.match(line)) is not None:
            minus, plus = int(m.group(2) or 1), int(m.group(4) or 1)
            body: list[str] = []
            while len(body) < minus + plus and i < len(lines):
                if not lines[i].startswith("\\"):  # "\ No newline at end of file" is no line of the file
                    body.append(lines[i])
                i += 1
            removed = tuple(ln[1:] for ln in body if ln.startswith("-"))
            added = tuple(ln[1:] for ln in body if ln.startswith("+"))
            if path and globs.matches(path):
                current.append(Hunk(path, int(m.group(1)), int(m.group(3)), added, removed))
    return out
