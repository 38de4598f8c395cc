"""`mdspec spec-map [PATH]`: the code each spec file and section produced over history, and the inverse.

PATH (relative to the current directory, as git takes paths) picks spec files, code files, or both under a
directory. Text by default, `--json`, or `--html FILE` for one self-contained page with the map and each
spec file's run cost and timeline. Progress goes to stderr once the work has taken more than a second.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mdspec import config, printer
from mdspec.errors import FatalError
from mdspec.fast.atomic import write_atomic
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import costs
from mdspec.trace import history as history_mod
from mdspec.trace import html as html_mod
from mdspec.trace.specmap import CodeFile, CodeOrigins, Lines, SpecFile, SpecMap, compute, other_changes

NAME = "mdspec spec-map"
# Seconds of work before progress shows; tests set it to 0 to see progress on a small history.
PROGRESS_AFTER_ENV = "MDSPEC_PROGRESS_AFTER"
ABOVE_FIRST = "(above the first ## heading)"


class Progress:
    """Progress on stderr, only once the work has taken longer than `after` seconds: one line rewritten
    in place on a terminal, a line every second otherwise. Never on stdout, which carries the answer."""

    def __init__(self, stream: TextIO, after: float) -> None:
        self.stream = stream
        self.after = after
        self.start = time.monotonic()
        self.last: float | None = None
        self.tty = stream.isatty()

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.start < self.after:
            return
        if self.last is not None and now - self.last < (0.1 if self.tty else 1.0):
            return
        self.last = now
        line = f"{NAME}: {text}…"
        self.stream.write(f"\r\x1b[K{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _progress_after() -> float:
    try:
        return max(0.0, float(os.environ.get(PROGRESS_AFTER_ENV, "1")))
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class Selection:
    path: str  # relative to the top, "" for the whole repository
    files: tuple[SpecFile, ...]
    code: tuple[CodeOrigins, ...]


def repo_path(repo: Repo, start: Path, arg: str) -> str:
    """`arg` as a path from the repository's top ("" for the top itself)."""
    full = os.path.normpath(os.path.join(os.path.abspath(start), arg))
    rel = os.path.relpath(full, repo.top)
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise FatalError(f"{arg}: outside the repository {repo.top}: give a path inside it")
    return rel.replace(os.sep, "/")


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def select(repo: Repo, m: SpecMap, path: str, generated: list[str]) -> Selection:
    """The spec files and code files PATH names; an error when it names nothing in the tree or the map."""
    files = tuple(f for f in m.files if _under(f.path, path))
    spec_paths = {f.path for f in m.files}
    code_paths = [c.path for c in m.code if _under(c.path, path) and c.path not in spec_paths]
    if not path:
        return Selection(path, files, tuple(m.origins(p) for p in code_paths))
    if not files and not code_paths:
        if not repo.tree_has(m.tip, path):
            raise FatalError(
                f"{path}: not in HEAD's tree nor a spec file or code file of its history: "
                "give a spec file, a code file or a directory (`git ls-files` lists them)"
            )
        if repo.entry_at(m.tip, path) is None:  # a directory with nothing mapped in it
            return Selection(path, (), ())
        code_paths = [path]  # a file no run changed: the inverse says so, with who did change it
    other = other_changes(repo, m.tip, [path], generated) if code_paths else {}
    return Selection(path, files, tuple(m.origins(p, other.get(p, Lines())) for p in code_paths))


# --- text ----------------------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _counts(lines: Lines) -> list[str]:
    return [_plural(lines.commits, "commit"), f"+{lines.added:,}", f"-{lines.removed:,}"]


def _reverted(lines: Lines) -> str:
    return f"reverted: {_plural(lines.commits, 'commit')} +{lines.added:,} -{lines.removed:,}" if lines.commits else ""


def _table(rows: list[list[str]]) -> list[str]:
    """Rows aligned in columns: the first and last left-aligned, the counts between them right-aligned."""
    if not rows:
        return []
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    out = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) if i in (0, n - 1) else r[i].rjust(widths[i]) for i in range(n)]
        out.append("  ".join(cells).rstrip())
    return out


def _cost_text(f: SpecFile) -> str:
    if not f.runs:
        return "no runs recorded"
    known = f"${f.known_cost:.4f}"
    if f.unknown_cost_runs == len(f.runs):
        cost = "cost unknown"
    elif f.unknown_cost_runs:
        cost = f"cost {known} + {f.unknown_cost_runs} unknown"
    else:
        cost = f"cost {known}"
    return f"{_plural(len(f.runs), 'run')}, {cost}"


def _produced(lines: Lines) -> list[str]:
    """The count columns; blank when nothing stands (all reverted), so the reverted column speaks."""
    return _counts(lines) if lines.commits else ["", "", ""]


def _code_row(indent: str, c: CodeFile) -> list[str]:
    return [indent + c.path, *_produced(c.produced), _reverted(c.reverted)]


def _forward_text(files: tuple[SpecFile, ...]) -> list[str]:
    """One table for all spec files, so every count column lines up down the page."""
    rows: list[list[str] | str] = []
    for f in files:
        rows.append("")
        rows.append(f"{f.path}  ({_plural(f.spec_commits, 'spec commit')}; {_cost_text(f)})")
        for s in f.sections:
            name = f"## {s.name}" if s.name else ABOVE_FIRST
            gone = ", no longer in the file" if not s.present else ""
            rows.append(f"  {name}  ({_plural(s.spec_commits, 'spec commit')}{gone})")
            if not s.code:
                rows.append("      no generated commit")
            rows += [_code_row("      ", c) for c in s.code]
    return _aligned(rows)


def _aligned(rows: list[list[str] | str]) -> list[str]:
    """Align the table rows among themselves; plain lines pass through."""
    table = _table([r for r in rows if isinstance(r, list)])
    it = iter(table)
    return [r if isinstance(r, str) else next(it) for r in rows]


def _inverse_text(code: tuple[CodeOrigins, ...]) -> list[str]:
    rows: list[list[str] | str] = []
    for c in code:
        rows.append("")
        parts = [f"{_plural(c.produced.commits, 'generated commit')} +{c.produced.added:,} -{c.produced.removed:,}"]
        if c.reverted.commits:
            parts.append(_reverted(c.reverted))
        if c.other is not None:
            oth = c.other
            parts.append(f"not from a run: {_plural(oth.commits, 'commit')} +{oth.added:,} -{oth.removed:,}")
        rows.append(f"{c.path}  ({'; '.join(parts)})")
        if not c.origins:
            rows.append("  no spec behind it: no generated commit changed it")
        for o in c.origins:
            section = f"## {o.section}" if o.section else ABOVE_FIRST
            rows.append([f"  {o.spec_file}  {section}", *_produced(o.produced), _reverted(o.reverted)])
    return _aligned(rows)


def text(m: SpecMap, sel: Selection, branch: str) -> list[str]:
    where = f"{m.tip[:10]} ({branch})" if branch else m.tip[:10]
    head = (
        f"{NAME}: {_plural(len(m.files), 'spec file')}, {_plural(m.generated, 'generated commit')} "
        f"({m.reverted:,} reverted) up to {where}"
    )
    if m.unattributed:
        head += f"; {_plural(m.unattributed, 'generated commit')} name spec commits not in this history"
    lines = [head]
    if sel.path and not sel.files and not sel.code:
        lines += ["", f"{sel.path}/: no spec file in it and no code file a run changed"]
    lines += _forward_text(sel.files)
    if sel.path:
        lines += _inverse_text(sel.code)
    return lines


# --- the command ---------------------------------------------------------------------------------------


def spec_map(
    start: Path,
    path: str | None,
    as_json: bool,
    html_file: Path | None,
    out: Printer,
    err: TextIO | None = None,
) -> int:
    repo = Repo(start)
    rel = repo_path(repo, start, path) if path is not None else ""
    head = repo.resolve_ref("HEAD")
    if head is None:
        raise FatalError(f"HEAD has no commits yet in {repo.top}: commit a spec change first")
    cfg = config.load(repo.top, required=False)
    progress = Progress(err or sys.stderr, _progress_after())
    try:
        progress("reading the history")
        hist = history_mod.load(repo, head, cfg, progress=lambda n: progress(f"read {n:,} commits"))
        if not hist.specs:
            raise FatalError(
                f"no spec commits in the history of HEAD (watched paths: {', '.join(cfg.watch)}): commit a "
                f"change to a watched path first, or set `watch` in {cfg.config_name}"
            )
        runs = costs.every_run(repo)
        m = compute(repo, hist, runs, cfg.notes_dir, progress)
        sel = select(repo, m, rel, [g.sha for g in hist.generated])
    finally:
        progress.done()
    branch = (repo.head_branch() or "").removeprefix("refs/heads/")
    if html_file is not None:
        title = f"spec map of {repo.top.name}" + (f": {rel}" if rel else "")
        # A page about code shows the spec files behind it too, with their runs.
        behind = {o.spec_file for c in sel.code for o in c.origins}
        files = sel.files + tuple(f for f in m.files if f.path in behind and f not in sel.files)
        page = html_mod.page(m, files, sel.code, title)
        target = Path(os.path.join(os.path.abspath(start), html_file))
        try:
            write_atomic(target, page, durable=False)
        except OSError as exc:
            raise FatalError(f"{html_file}: cannot write the page: {exc.strerror or exc}") from None
        out(f"{NAME}: wrote {html_file} ({len(page.encode()):,} bytes)")
        return 0
    data = {
        "tip": m.tip,
        "branch": branch or None,
        "path": rel,
        "generated_commits": m.generated,
        "reverted_commits": m.reverted,
        "unattributed_commits": m.unattributed,
        "spec_files": [f.as_json() for f in sel.files],
        "code_files": [c.as_json() for c in sel.code],
    }
    return printer.report(out, as_json, lambda: data, lambda: text(m, sel, branch))
