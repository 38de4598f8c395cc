"""The system prompt and the first message of a run, rendered from templates/.

The system prompt depends only on the config and the repository's AGENTS.md, so it is byte-identical
from run to run and the prompt cache keeps serving it. Everything about this run goes in the first message.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mdspec import git, templates
from mdspec.config import Config
from mdspec.errors import FatalError
from mdspec.git import CommitInfo, Repo


class SpecCommit(Protocol):
    """A spec commit as the prompt needs it (the run engine's pending.SpecCommit is one): the agents sit
    below the run engine and take its records by their shape, not by importing it."""

    @property
    def info(self) -> CommitInfo: ...

    @property
    def paths(self) -> tuple[str, ...]: ...


DIFF_LIMIT = 200_000  # characters of diff per spec commit
MESSAGE_LIMIT = 20_000  # characters of each spec commit's message
SYMLINK_MODE = "120000"
LISTING_LIMIT = 2_000  # files listed one by one before folding by directory
NOTES_LIMIT = 200


@dataclass(frozen=True)
class Prompt:
    system: str
    task: str


def system_prompt(cfg: Config, agents_md: str | None) -> str:
    check = (
        f"The check `{cfg.check}` runs after you finish; if it fails you get its output to fix it."
        if cfg.check
        else "No check command is configured; run the project's tests yourself where it has some."
    )
    own = f"# The repository's AGENTS.md\n\n{agents_md.strip()}\n" if agents_md and agents_md.strip() else ""
    return (
        templates.render(
            templates.read("system.md"),
            protected=", ".join(f"`{g}`" for g in cfg.protected_globs),
            notes_dir=cfg.notes_dir,
            check_line=check,
            agents_md=own,
        ).rstrip()
        + "\n"
    )


class LinkedSpecPath(FatalError):
    """A watched path committed as a symbolic link that dangles or leads out of the repository."""


def _capped(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters of {what} cut …]"


def check_links(repo: Repo, sha: str, paths: Sequence[str]) -> None:
    """Refuse a spec commit whose watched paths include a symlink that dangles or leaves the repository:
    the run would read a file of the user's outside the repository into the prompt, or bind a path that
    does not exist into the sandbox. A link to another file of the repository is only text in the diff."""
    if not paths:
        return
    listing = git.run(["ls-tree", "-z", sha, "--", *paths], repo.top, check=False).stdout
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        if not meta.startswith(SYMLINK_MODE + " "):
            continue
        target = (repo.blob_at(sha, path) or b"").decode("utf-8", "replace")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        short = sha[:12]
        if target.startswith("/") or joined == ".." or joined.startswith("../"):
            where = "outside the repository"
        elif not repo.tree_has(sha, joined):
            where = "that does not exist (a dangling link)"
        else:
            continue
        raise LinkedSpecPath(
            f"{path} in spec commit {short} is a symbolic link to {target!r}, {where}: mdspec "
            "does not follow it; commit the file itself in its place, then `mdspec run`"
        )


def _commit_section(repo: Repo, n: int, total: int, spec: SpecCommit) -> str:
    info = spec.info
    parent = info.parents[0] if info.parents else None
    check_links(repo, info.sha, spec.paths)
    diff = repo.diff_text(parent, info.sha, list(spec.paths), DIFF_LIMIT)
    task_md = ""
    if "TASK.md" in spec.paths:
        body = repo.blob_at(info.sha, "TASK.md")
        if body is not None:
            task_md = (
                "\nThe task to complete (TASK.md as of this commit):\n\n"
                + body.decode("utf-8", "replace")[:DIFF_LIMIT]
                + "\n"
            )
    return (
        f"## Spec commit {n} of {total}: {info.short} {info.subject}\n\n"
        f"Commit message:\n\n{_capped(info.message.strip(), MESSAGE_LIMIT, 'this commit message')}\n{task_md}\n"
        f"Diff of the watched paths:\n\n```diff\n{diff.rstrip()}\n```\n"
    )


def _listing(files: Sequence[str]) -> str:
    if len(files) <= LISTING_LIMIT:
        return "\n".join(files)
    counts: dict[str, int] = {}
    for f in files:
        top = f.split("/", 1)[0] + ("/" if "/" in f else "")
        counts[top] = counts.get(top, 0) + 1
    return "\n".join(f"{d} ({c} files)" if d.endswith("/") else d for d, c in sorted(counts.items()))


def _notes_index(repo: Repo, base: str, files: Sequence[str], notes_dir: str) -> str:
    notes = [f for f in files if f.startswith(notes_dir + "/") and f.endswith(".md")]
    if not notes:
        return "(none yet)"
    lines = []
    for path in notes[:NOTES_LIMIT]:
        data = repo.blob_at(base, path) or b""
        first = next((ln.strip("# ").strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()), "")
        lines.append(f"- {path}: {first[:100]}")
    if len(notes) > NOTES_LIMIT:
        lines.append(f"- … and {len(notes) - NOTES_LIMIT} more")
    return "\n".join(lines)


def render(repo: Repo, cfg: Config, base: str, specs: Sequence[SpecCommit], extra: str = "") -> Prompt:
    agents = repo.blob_at(base, "AGENTS.md")
    files = repo.tracked_files(base)
    commits = "\n".join(_commit_section(repo, i + 1, len(specs), s) for i, s in enumerate(specs))
    task = templates.render(
        templates.read("task.md"),
        plural="s" if len(specs) > 1 else "",
        commits=commits,
        file_count=str(len(files)),
        listing=_listing(files),
        notes_dir=cfg.notes_dir,
        notes=_notes_index(repo, base, files, cfg.notes_dir),
    )
    if extra:
        task += "\n" + extra
    return Prompt(system_prompt(cfg, agents.decode("utf-8", "replace") if agents else None), task)
