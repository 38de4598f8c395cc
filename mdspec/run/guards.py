"""The post-run guards (DESIGN §3.4): whatever the agent's commands did, a generated commit changes no
protected path, carries no symlink leading out of the worktree, and the repository's own git dir (config,
hooks, info) is put back byte for byte. They hold with or without the sandbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from mdspec.exec.procs import secret_values
from mdspec.fast.globs import Globs
from mdspec.run import worktree

GitDirSnapshot = dict[str, tuple[bytes, int]]


def snapshot_git_dir(common: Path) -> GitDirSnapshot:
    """The parts of the repository's git dir an escaped command could use against the user: content and mode."""
    out: dict[str, tuple[bytes, int]] = {}
    candidates = [common / rel for rel in ("config", "info/attributes", "info/exclude")]
    hooks = common / "hooks"
    if hooks.is_dir():
        candidates += sorted(hooks.iterdir())
    for p in candidates:
        rel = str(p.relative_to(common))
        if p.is_symlink():
            out[rel] = (os.fsencode(os.readlink(p)), -1)  # -1: a symlink to this target
        elif p.is_file():
            out[rel] = (p.read_bytes(), p.stat().st_mode & 0o7777)
    return out


def restore_git_dir(common: Path, before: GitDirSnapshot) -> list[str]:
    changed = []
    for sub in ("hooks", "info"):
        d = common / sub
        if d.is_symlink():  # a directory swapped for a link: restoring into it would write elsewhere
            d.unlink()
            d.mkdir()
            changed.append(f".git/{sub}")
    after = snapshot_git_dir(common)
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) == after.get(rel):
            continue
        changed.append(f".git/{rel}")
        p = common / rel
        # Unlink first: writing to a symlink the command put there would write through it.
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
        if rel in before:
            data, mode = before[rel]
            if mode == -1:
                os.symlink(os.fsdecode(data), p)
            else:
                p.write_bytes(data)
                p.chmod(mode)
    return changed


def _too_large(wt: Path, status: str, path: str, max_bytes: int | None) -> bool:
    if max_bytes is None or status == "D":
        return False
    p = wt / path
    try:
        return not p.is_symlink() and p.is_file() and p.stat().st_size > max_bytes
    except OSError:
        return False


def drop_oversized(wt: Path, base: str, max_bytes: int | None, found: list[tuple[str, str]] | None = None) -> list[str]:
    """Remove new or changed files above `max_bytes` before they are staged (hashing 2 GB takes long).
    `found`: the worktree's changes (`worktree.changes`) when already scanned; the dropped ones leave it."""
    if max_bytes is None:
        return []
    if found is None:
        found = worktree.changes(wt)
    big = [("A" if tag == worktree.UNTRACKED else "M", p) for tag, p in found]
    big = [(s, p) for s, p in big if _too_large(wt, s, p, max_bytes)]
    if big:
        worktree.restore(wt, base, big)
        dropped = {p for _, p in big}
        found[:] = [(tag, p) for tag, p in found if p not in dropped]
    return [f"{_shown(p)} (larger than {max_bytes // (1 << 20)} MB)" for _, p in big]


def enforce_protected(wt: Path, base: str, protected: Globs, max_bytes: int | None = None) -> list[str]:
    """Undo every change to a protected path, every symlink leading out of the worktree, and every file
    above `max_bytes` (None: no size limit)."""
    return guard_worktree(wt, base, protected, max_bytes)[0]


def guard_worktree(wt: Path, base: str, protected: Globs, max_bytes: int | None = None) -> tuple[list[str], str | None]:
    """`enforce_protected`, and the worktree's tree when nothing had to be restored after it was staged
    (None otherwise: snapshot again). The tree is scanned once for both."""
    found = worktree.changes(wt)
    labels = drop_oversized(wt, base, max_bytes, found)
    tree = worktree.snapshot_tree(wt, [p for _, p in found])
    changes = worktree.changed_between(wt, base, tree)
    bad: list[tuple[str, str]] = []
    root = wt.resolve()
    for status, p in changes:
        if _too_large(wt, status, p, max_bytes):  # staged by a command itself, so not seen above
            bad.append((status, p))
            labels.append(f"{_shown(p)} (larger than {(max_bytes or 0) // (1 << 20)} MB)")
            continue
        link = wt / p
        if status != "D" and link.is_symlink():
            target = (link.parent / os.readlink(link)).resolve()
            if not target.is_relative_to(root) or ".git" in target.relative_to(root).parts:
                bad.append((status, p))
                labels.append(f"{_shown(p)} (symlink out of the worktree)")
                continue
        if protected.matches(p):
            bad.append((status, p))
            labels.append(f"{_shown(p)} (protected)")
    if bad:
        worktree.restore(wt, base, bad)
        return labels, None
    return labels, tree


def _shown(path: str) -> str:
    """A path for messages and commit bodies: bytes that are not UTF-8 shown as escapes (\\xff)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _contains(path: Path, secrets: Sequence[bytes]) -> bool:
    """Whether the file (or a symlink's target text) holds a secret; read in pieces, with an overlap so
    that a value across two pieces is found."""
    if path.is_symlink():
        target = os.fsencode(os.readlink(path))
        return any(s in target for s in secrets)
    if not path.is_file():
        return False
    overlap = max(len(s) for s in secrets) - 1
    tail = b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            data = tail + chunk
            if any(s in data for s in secrets):
                return True
            tail = data[-overlap:] if overlap else b""
    return False


def secret_leaks(wt: Path, base: str, tree: str, message: str, secrets: Sequence[bytes] | None = None) -> list[str]:
    """Where the result to land carries the API key's value (default: the worker's own key): each new or
    changed file, and the commit message. A command that could read the key (sandbox off, or the claude-code
    preset, which gets it) might have written it into the code; such a result must never land."""
    found = [s for s in (secret_values() if secrets is None else secrets) if s]
    if not found:
        return []
    out = [
        _shown(p)
        for status, p in worktree.changed_between(wt, base, tree)
        if status != "D" and _contains(wt / p, found)
    ]
    if any(s in message.encode("utf-8", "surrogateescape") for s in found):
        out.append("the commit message")
    return out
