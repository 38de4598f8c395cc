"""Everything mdspec does with git. The only module that imports pygit2.

pygit2 reads objects, walks history and writes trees; the git CLI is used where git's own safety is
wanted (worktrees, updating a checkout without clobbering edits, compare-and-swap ref updates) and for
commits, which `git commit-tree` signs exactly as the user's own commits are signed (commit.gpgsign,
gpg.format, user.signingkey and the signing programs are git's business, not ours). Always with the
`GIT_*` variables a hook inherits cleared, so no command aims at the wrong repository or index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from mdspec.errors import FatalError, GitError, NotARepository, SigningError, UnsupportedRepository
from mdspec.fast import gitenv, paths
from mdspec.fast.globs import Globs

HEX_LENGTHS = {"sha1": 40, "sha256": 64}  # git's object formats and the length of their names in hex
# Runs the user's openpgp/x509 signing program unchanged, keeping a copy of what it says on stderr: git
# (before 2.41 or so) swallows that, and a failed signature must be reported with the signer's own words.
_SIGNER_WRAPPER = """#!/bin/sh
"$MDSPEC_SIGNER" "$@" 2>"$MDSPEC_SIGNER_LOG"
status=$?
cat "$MDSPEC_SIGNER_LOG" >&2
exit $status
"""


def _entry(tree: pygit2.Tree | None, name: str) -> pygit2.Object | None:
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


_EVERY_PATH = Globs(["**"])


def _has_file(tree: pygit2.Tree, path: str) -> bool:
    """Whether `path` is a file (blob, symlink or submodule) in `tree`, not absent or a directory."""
    try:
        return tree[path].type_str != "tree"
    except KeyError:
        return False


def _info(c: pygit2.Commit) -> CommitInfo:
    return CommitInfo(
        sha=str(c.id),
        parents=tuple(str(p) for p in c.parent_ids),
        message=c.message,
        author_name=c.author.name,
        author_email=c.author.email,
        tree=str(c.tree_id),
        time=int(c.commit_time),
    )


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without git's hook variables (GIT_DIR, GIT_INDEX_FILE, GIT_AUTHOR_* …), keeping
    what the user's git needs to reach remotes and credentials (the rule is in gitenv.py)."""
    return gitenv.clean(base)


def run(
    args: list[str],
    cwd: Path,
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    errors: str = "replace",
) -> subprocess.CompletedProcess[str]:
    """Run git with a clean environment; on failure with `check`, a GitError naming the command.

    `errors="surrogateescape"` keeps path names that are not UTF-8 intact, to pass back to git as they are.
    """
    e = clean_env()
    if env:
        e.update(env)
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=e,
        input=input.decode() if isinstance(input, bytes) else input,
        capture_output=True,
        text=True,
        encoding="utf-8",  # git's bytes are UTF-8 by convention, whatever the locale says
        errors=errors,
    )
    if check and proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise GitError(
            f"git {' '.join(args[:3])} failed: {msg[-1] if msg else f'exit {proc.returncode}'}",
            ["git", *args],
            (proc.stdout + proc.stderr).strip() or f"(no output; exit {proc.returncode})",
            str(cwd),
        )
    return proc


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    message: str
    author_name: str
    author_email: str
    tree: str
    time: int = 0  # committer time, epoch seconds

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Hunk:
    """One hunk of a commit's change to a file (no context lines): where it sits and its lines."""

    path: str
    old_start: int
    new_start: int  # the first line in the new version (for a pure removal, the line it follows)
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class FileChange:
    """A file a commit changed against its first parent, with its line counts (0, 0 for a binary)."""

    path: str
    added: int
    removed: int


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


def identity_env(author: Identity, committer: Identity) -> dict[str, str]:
    """The environment that makes git record `author` and `committer`."""
    return {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
    }


class Repo:
    """A non-bare repository with a working tree."""

    def __init__(self, start: Path) -> None:
        path = pygit2.discover_repository(str(start))
        if path is None:
            raise NotARepository(f"{start} is not inside a git repository: run mdspec inside one")
        try:
            self.pg = pygit2.Repository(path)
        except pygit2.GitError as exc:
            raise _unreadable(Path(path), exc) from None
        if self.pg.is_bare or self.pg.workdir is None:
            raise NotARepository(f"{path} is a bare repository: mdspec needs a working tree")
        self.top = Path(self.pg.workdir).resolve()
        self.git_dir = Path(self.pg.path).resolve()
        common = self.git_dir
        if (self.git_dir / "commondir").is_file():
            common = (self.git_dir / (self.git_dir / "commondir").read_text().strip()).resolve()
        self.common_dir = common
        try:
            fmt = str(self.pg.config["extensions.objectformat"]).lower()
        except KeyError:
            fmt = "sha1"
        self.object_format = fmt
        # Both follow the repository's object format, never a fixed SHA-1 length.
        self.zero_oid = "0" * HEX_LENGTHS.get(fmt, 40)
        self.empty_tree = hashlib.new(fmt, b"tree 0\0").hexdigest()

    @property
    def state_dir(self) -> Path:
        """mdspec's state (`.git/mdspec`): under the common git dir, shared by every worktree, never committed."""
        return self.common_dir / paths.STATE_DIRNAME

    # --- refs ---------------------------------------------------------------------------------------

    def head_branch(self) -> str | None:
        """`refs/heads/x` HEAD points at (born or unborn), or None when detached."""
        if self.pg.head_is_detached:
            return None
        try:
            return str(self.pg.lookup_reference("HEAD").target)
        except KeyError:
            return None

    def resolve_ref(self, ref: str) -> str | None:
        try:
            return str(self.pg.lookup_reference(ref).resolve().target)
        except (KeyError, pygit2.InvalidSpecError):
            return None

    def rev_parse(self, rev: str) -> str:
        try:
            obj = self.pg.revparse_single(rev)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.InvalidSpecError, pygit2.GitError):
            raise GitError(f"{rev!r} does not name a commit in {self.top}") from None
        return str(commit.id)

    def update_ref(self, ref: str, new: str, old: str | None, message: str) -> bool:
        """Compare-and-swap `ref` from `old` (None: must not exist) to `new`; False when it had moved."""
        proc = run(["update-ref", "-m", message, ref, new, old or self.zero_oid], self.top, check=False)
        return proc.returncode == 0

    def delete_ref(self, ref: str) -> None:
        """Delete one of mdspec's own refs (and its reflog) in process, as `git update-ref -d` would; left
        as it is when git holds its lock (or it is gone already)."""
        with contextlib.suppress(KeyError, ValueError, pygit2.GitError):
            self.pg.references.delete(ref)

    # --- objects ------------------------------------------------------------------------------------

    def _commit(self, sha: str) -> pygit2.Commit:
        try:
            return self.pg[sha].peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.InvalidSpecError):
            raise GitError(f"{sha[:12]} is not a commit in {self.top}") from None

    def _tree(self, sha: str) -> pygit2.Tree:
        """The tree of a commit, or the tree itself."""
        return self.pg[sha].peel(pygit2.Tree)

    def commit(self, sha: str) -> CommitInfo:
        return _info(self._commit(sha))

    def has_commit(self, sha: str) -> bool:
        try:
            self._commit(sha)
        except GitError:
            return False
        return True

    def first_parent_walk(self, tip: str, limit: int) -> Iterator[CommitInfo]:
        """Commits from `tip` back along first parents, newest first, at most `limit`."""
        walker = self.pg.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL)
        walker.simplify_first_parent()
        for n, c in enumerate(walker):
            if n >= limit:
                return
            yield _info(c)

    def walk(self, tip: str, limit: int, hide: tuple[str, ...] = ()) -> Iterator[CommitInfo]:
        """Every commit reachable from `tip` and from none of `hide`, merged-in branches too, newest first
        (topological: children before parents), at most `limit`. Hiding lets the sort stop early: a
        topological walk of the whole history reads all of it before the first commit comes out."""
        walker = self.pg.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
        for h in hide:
            walker.hide(h)
        for n, c in enumerate(walker):
            if n >= limit:
                return
            yield _info(c)

    def note(self, sha: str, ref: str) -> str | None:
        """The note on a commit in a notes ref, read in process; None when it has none."""
        try:
            return str(self.pg.lookup_note(sha, ref).message)
        except (KeyError, ValueError, pygit2.GitError):
            return None

    def descends(self, sha: str, ancestor: str) -> bool:
        """Whether `ancestor` is `sha` or one of its ancestors, decided in process."""
        try:
            return sha == ancestor or bool(self.pg.descendant_of(sha, ancestor))
        except (KeyError, ValueError, pygit2.GitError):
            return False

    def _file_hunks(self, old: str | None, new: str, path: str) -> tuple[list[Hunk], int, int] | None:
        """The hunks (no context lines) of one file between two commits (either side may lack it), and its
        lines added and removed; None when neither has it. A binary file has no hunks.

        Made from the two blobs alone: a whole-tree diff costs ~15 ms on 50,000 files, this costs what the
        file does. Everything is read out of the patch here, while the blobs it points into are alive."""
        a = self._blob(old, path) if old else None
        b = self._blob(new, path)
        if a is None and b is None:
            return None
        patch = pygit2.Patch.create_from(a, b, old_as_path=path, new_as_path=path, context_lines=0)
        _, added, removed = patch.line_stats
        hunks: list[Hunk] = []
        if not patch.delta.is_binary:
            for h in patch.hunks:
                plus = tuple(ln.content.rstrip("\n") for ln in h.lines if ln.origin == "+")
                minus = tuple(ln.content.rstrip("\n") for ln in h.lines if ln.origin == "-")
                hunks.append(Hunk(path, int(h.old_start), int(h.new_start), plus, minus))
        del patch  # before the blobs
        return hunks, int(added), int(removed)

    def _blob(self, sha: str, path: str) -> pygit2.Blob | None:
        try:
            obj = self.pg[self._tree(sha)[path].id]
        except (KeyError, ValueError):
            return None
        return obj if isinstance(obj, pygit2.Blob) else None

    def hunks(self, sha: str, paths: Collection[str]) -> list[Hunk]:
        """The hunks of a commit's change (against its first parent) to `paths`, without context lines, in
        path then line order. Text is decoded as UTF-8, replacing what is not; binary files have none."""
        c = self._commit(sha)
        parent = str(c.parent_ids[0]) if c.parent_ids else None
        out: list[Hunk] = []
        for path in sorted(paths):
            found = self._file_hunks(parent, sha, path)
            out += found[0] if found else []
        return out

    def merged_in(self, merge: CommitInfo, limit: int) -> Iterator[CommitInfo]:
        """The commits a merge brings in: reachable from its other parents, not from its first one."""
        if len(merge.parents) < 2:
            return
        walker = self.pg.walk(merge.parents[1], pygit2.enums.SortMode.TOPOLOGICAL)
        for other in merge.parents[2:]:
            walker.push(other)
        walker.hide(merge.parents[0])
        for n, c in enumerate(walker):
            if n >= limit:
                return
            yield _info(c)

    def changed_matching(self, info: CommitInfo, globs: Globs) -> list[str]:
        """Paths matching `globs` that a commit changes against its first parent.

        Walks both trees at once, skipping subtrees whose ids are equal or that no glob can reach, and
        looking up only the names a glob can name where it can: cost follows what the globs watch, not
        the size of the repository (a libgit2 tree diff costs milliseconds per commit on 50,000 files).
        """
        new = self._tree(info.tree)
        old = self._tree(info.parents[0]) if info.parents else None
        out: list[str] = []
        self._walk_changes(old, new, "", globs, out)
        return out

    def _walk_changes(
        self, old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str, globs: Globs, out: list[str]
    ) -> None:
        names = globs.child_names(prefix)
        if names is None:
            names = {str(e.name) for e in old} if old is not None else set()
            names |= {str(e.name) for e in new} if new is not None else set()
        for name in sorted(names):
            a = _entry(old, name)
            b = _entry(new, name)
            if a is None and b is None:
                continue
            if a is not None and b is not None and a.id == b.id and a.filemode == b.filemode:
                continue
            path = prefix + name
            a_tree = self._tree(str(a.id)) if a is not None and a.type_str == "tree" else None
            b_tree = self._tree(str(b.id)) if b is not None and b.type_str == "tree" else None
            if (a_tree is not None or b_tree is not None) and globs.could_contain(path):
                self._walk_changes(a_tree, b_tree, path + "/", globs, out)
            if (a_tree is None or b_tree is None) and globs.matches(path):
                out.append(path)

    def changed_paths(self, old: str, new: str) -> list[tuple[str, str]]:
        """(status, path) for every file that differs between two commits or trees, as `git diff-tree -r
        --no-renames --name-status` lists them ("A", "D", "M"; a type change is an "M"), found in memory:
        subtrees the two share are skipped, so the cost follows the change, not the tree."""
        a, b = self._tree(old), self._tree(new)
        out: list[str] = []
        self._walk_changes(a, b, "", _EVERY_PATH, out)
        out.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))  # git's order: by the path's bytes
        found = [(_has_file(a, p), _has_file(b, p), p) for p in out]
        # The walk names a directory that is new or gone as well as its files: only files are changes.
        return [("A" if not before else "D" if not after else "M", p) for before, after, p in found if before or after]

    def diff_text(self, old_sha: str | None, new_sha: str, paths: list[str], limit: int) -> str:
        """A unified diff from `old_sha` (None: empty tree) to `new_sha` for `paths`, capped at `limit` chars."""
        if not paths:
            return ""
        args = ["diff", "--no-color", "--no-ext-diff", "-M", old_sha or self.empty_tree, new_sha]
        proc = run([*args, "--", *paths], self.top, check=False)
        text = proc.stdout
        if len(text) > limit:
            cut = len(text) - limit
            text = text[:limit] + f"\n[… {cut} more characters of this diff cut …]\n"
        return text

    def blob_at(self, sha: str, path: str) -> bytes | None:
        try:
            obj = self.pg[self._tree(sha)[path].id]
        except (KeyError, ValueError):
            return None
        return obj.data if isinstance(obj, pygit2.Blob) else None

    def is_ancestor(self, ancestor: str, tip: str) -> bool:
        return run(["merge-base", "--is-ancestor", ancestor, tip], self.top, check=False).returncode == 0

    def entry_at(self, sha: str, path: str) -> tuple[int, bytes] | None:
        """(file mode, content) of `path` in a commit or tree; None when absent or a directory."""
        try:
            entry = self._tree(sha)[path]
        except (KeyError, ValueError):
            return None
        obj = self.pg[entry.id]
        return (int(entry.filemode), obj.data) if isinstance(obj, pygit2.Blob) else None

    def tree_has(self, sha: str, path: str) -> bool:
        try:
            self._tree(sha)[path]
        except KeyError:
            return False
        return True

    def tracked_files(self, sha: str) -> list[str]:
        out: list[str] = []

        def walk(t: pygit2.Tree, prefix: str) -> None:
            for e in t:
                if e.type_str == "tree":
                    walk(self._tree(str(e.id)), f"{prefix}{e.name}/")
                else:
                    out.append(f"{prefix}{e.name}")

        walk(self._tree(sha), "")
        return out

    def tree_of(self, sha: str) -> str:
        return str(self._commit(sha).tree_id)

    # --- writing ------------------------------------------------------------------------------------

    def identity(self) -> Identity:
        cfg = self.pg.config
        try:
            name = cfg["user.name"]
            email = cfg["user.email"]
        except KeyError:
            raise GitError(
                "git has no user.name/user.email here: set them with `git config user.name …` and "
                "`git config user.email …`, then `mdspec run`"
            ) from None
        return Identity(str(name), str(email))

    def signing(self) -> bool:
        """Whether the user's commits here are signed (commit.gpgsign).

        Read in-process: landing calls this between checking the user's index and updating it, and a
        git process per check would widen that window on every landing, signed or not.
        """
        try:
            return bool(self.pg.config.get_bool("commit.gpgsign"))
        except (KeyError, pygit2.GitError):
            return False

    def create_commit(
        self,
        tree: str,
        parent: str,
        message: str,
        author: Identity,
        committer: Identity,
        *,
        sign: bool | None = None,
        author_when: tuple[int, int] | None = None,
    ) -> str:
        """Write a commit, signed exactly when the user's commits are (then with `git commit-tree -S`).

        `sign=None` follows commit.gpgsign; git then signs with the user's gpg.format, user.signingkey and
        signing program. A failed signature raises SigningError with the signer's message; nothing is
        written then. `author_when` (seconds, UTC offset in minutes) keeps a re-made commit's author date.
        """
        if sign is None:
            sign = self.signing()
        env = identity_env(author, committer)
        if author_when:
            env["GIT_AUTHOR_DATE"] = _git_date(*author_when)
        if not sign:  # the same object git would write, without a process
            a = pygit2.Signature(author.name, author.email, *(author_when or ()))
            c = pygit2.Signature(committer.name, committer.email)
            oid = self.pg.create_commit(None, a, c, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=parent)])
            return str(oid)
        return self._signed_commit_tree(["commit-tree", tree, "-p", parent, "-F", "-"], message, env)

    def _signed_commit_tree(self, args: list[str], message: str, env: dict[str, str]) -> str:
        fmt = run(["config", "--get", "gpg.format"], self.top, check=False).stdout.strip() or "openpgp"
        # The wrapper goes where git's own hooks run from, not /tmp, which may be mounted noexec.
        state = self.state_dir
        try:
            state.mkdir(exist_ok=True)
            where: Path | None = state
        except OSError:
            where = None
        with tempfile.TemporaryDirectory(prefix="sign-", dir=where) as tmp:
            pre: list[str] = []
            log = Path(tmp) / "signer.err"
            if fmt in ("openpgp", "x509"):
                # gpg.program is openpgp's program under its older name; git reads whichever comes last.
                keys = "gpg.program" if fmt == "openpgp" else "gpg.x509.program"
                if fmt == "openpgp":
                    keys += " gpg.openpgp.program"
                program = _config_last(self.top, keys.split()) or ("gpg" if fmt == "openpgp" else "gpgsm")
                wrapper = Path(tmp) / "signer"
                wrapper.write_text(_SIGNER_WRAPPER, encoding="utf-8")
                wrapper.chmod(0o700)
                pre = ["-c", f"gpg.{fmt}.program={wrapper}"]
                env = {**env, "MDSPEC_SIGNER": program, "MDSPEC_SIGNER_LOG": str(log)}
            proc = run([*pre, *args, "-S"], self.top, check=False, input=message, env=env, errors="strict")
            if proc.returncode == 0:
                return proc.stdout.strip()
            said = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        raise SigningError(f"signing the commit failed ({fmt}): {_signer_message(said, proc.stderr)}")

    def rebase_commit(self, sha: str, onto: str, committer: Identity) -> str | None:
        """Replay commit `sha` (one parent) onto `onto` in memory; None when it conflicts.

        The new commit keeps the author (and author date) and is signed when the user's commits are;
        a failed signature raises SigningError.
        """
        c = self._commit(sha)
        onto_commit = self._commit(onto)
        index = self.pg.merge_trees(self._tree(str(c.parent_ids[0])), onto_commit.tree, c.tree)
        if index.conflicts is not None:
            return None
        tree = index.write_tree(self.pg)
        author = Identity(c.author.name, c.author.email)
        return self.create_commit(
            str(tree), onto, c.message, author, committer, author_when=(c.author.time, c.author.offset)
        )

    def ensure_signed(self, sha: str) -> str:
        """`sha`, or the same commit re-made with a signature when the user signs and it has none.

        A result held because signing failed is unsigned; it must never land that way.
        """
        if not self.signing():
            return sha
        c = self._commit(sha)
        if c.gpg_signature[0]:  # (None, None) when unsigned
            return sha
        author = Identity(c.author.name, c.author.email)
        committer = Identity(c.committer.name, c.committer.email)
        parents = [str(p) for p in c.parent_ids]
        return self.create_commit(
            str(c.tree_id),
            parents[0],
            c.message,
            author,
            committer,
            sign=True,
            author_when=(c.author.time, c.author.offset),
        )

    def revert_tree(self, shas: list[str], onto: str) -> str | None:
        """The tree of `onto` with each commit in `shas` undone in turn (in memory); None on conflict."""
        current = self._tree(onto)
        for sha in shas:
            c = self._commit(sha)
            index = self.pg.merge_trees(c.tree, current, self._tree(str(c.parent_ids[0])))
            if index.conflicts is not None:
                return None
            current = self._tree(str(index.write_tree(self.pg)))
        return str(current.id)

    def add_note(self, sha: str, text: str, ref: str, who: Identity, subject: str = "mdspec: note") -> None:
        """Attach `text` as the note of `sha` under `ref`, in a notes commit whose message is `subject`.

        In process, with one git command: libgit2 writes the note into a draft ref started at the notes
        commit (following the fan-out the notes tree has), the notes commit is made again with mdspec's
        message, and git moves `ref` to it by compare-and-swap; a note of someone else's that got in
        first is built on (the draft starts over from it).
        """
        sig = pygit2.Signature(who.name, who.email)
        message = _stripspace(text)  # as `git notes add` keeps it
        draft = f"{_NOTE_DRAFT}-{os.getpid()}"
        for _ in range(5):
            current = self.resolve_ref(ref)
            try:
                if current is not None:
                    self.pg.create_reference_direct(draft, pygit2.Oid(hex=current), True)
                elif self.resolve_ref(draft) is not None:  # left by a process of the same pid: start empty
                    self.pg.references.delete(draft)
                self.pg.create_note(message, sig, sig, sha, draft, True)
                tree = self._commit(self.resolve_ref(draft) or "").tree_id
            except (pygit2.GitError, ValueError) as exc:
                raise GitError(f"could not write the note of {sha[:12]} under {ref}: {exc}") from None
            finally:
                if self.resolve_ref(draft) is not None:
                    self.pg.references.delete(draft)
            parents = [pygit2.Oid(hex=current)] if current else []
            new = self.pg.create_commit(None, sig, sig, subject + "\n", tree, parents)
            if self.update_ref(ref, str(new), current, subject):
                return
        raise GitError(f"could not write the note of {sha[:12]}: {ref} kept changing")

    # --- per-file diffs whose cost follows the change, not the tree ----------------------------------

    def file_changes(self, sha: str) -> list[FileChange]:
        """Every file a commit changed against its first parent, with lines added and removed (0 and 0 for
        a binary file), found in memory: the two trees are read once per level into dicts and only object
        ids compared (a mode change alone changes no line), a third of `changed_paths`'s cost on wide
        directories; each changed file is diffed from its two blobs."""
        c = self._commit(sha)
        parent = str(c.parent_ids[0]) if c.parent_ids else None
        found: list[str] = []
        self._changed_names(self._tree(parent) if parent else None, c.tree, "", found)
        out: list[FileChange] = []
        for path in sorted(found, key=lambda p: p.encode("utf-8", "surrogateescape")):
            diff = self._file_hunks(parent, sha, path)
            if diff is not None:  # None: a directory the walk named along with its files
                out.append(FileChange(path, diff[1], diff[2]))
        return out

    def _changed_names(self, old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str, out: list[str]) -> None:
        """The paths whose object differs between two trees, subtrees they share skipped. Entries are read
        once per tree into a dict, and only ids compared: a change of file mode alone changes no line."""
        a = {str(e.name): e for e in old} if old is not None else {}
        b = {str(e.name): e for e in new} if new is not None else {}
        for name in a.keys() | b.keys():
            x, y = a.get(name), b.get(name)
            if x is not None and y is not None and x.id == y.id:
                continue
            x_tree = self._tree(str(x.id)) if x is not None and x.type_str == "tree" else None
            y_tree = self._tree(str(y.id)) if y is not None and y.type_str == "tree" else None
            if x_tree is not None or y_tree is not None:
                self._changed_names(x_tree, y_tree, f"{prefix}{name}/", out)
            if x_tree is None or y_tree is None:
                out.append(prefix + name)


_NOTE_DRAFT = "refs/mdspec/note-draft"  # where libgit2 writes a note before its commit is made again


def _stripspace(text: str) -> str:
    """Text cleaned up as git cleans a note (`git stripspace`): no trailing spaces, no runs of blank
    lines, none at either end, a final newline."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "".join(f"{ln}\n" for ln in out)


def _unreadable(path: Path, exc: Exception) -> FatalError:
    """The one-line reason pygit2 cannot open a repository (SHA-256 repositories, above all)."""
    top = path.parent if path.name == ".git" else path
    proc = run(["rev-parse", "--show-object-format"], top, check=False)
    fmt = proc.stdout.strip()
    if proc.returncode == 0 and fmt and fmt != "sha1":
        name = fmt.upper().replace("SHA", "SHA-")
        return UnsupportedRepository(
            f"{top} uses {name} object names (git init --object-format={fmt}); mdspec reads git through "
            f"libgit2 {pygit2.LIBGIT2_VERSION}, which opens SHA-1 repositories only, so mdspec cannot work here"
        )
    return NotARepository(f"{top}: mdspec cannot open this repository: {exc}")


def _git_date(seconds: int, offset: int) -> str:
    """A time in git's own date format, `@<seconds> <+hhmm>` (offset in minutes east of UTC)."""
    return f"@{seconds} {'-' if offset < 0 else '+'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _config_last(top: Path, keys: list[str]) -> str | None:
    """The value of whichever of `keys` is set last in git's config order (git's own rule for aliases)."""
    pattern = "^(" + "|".join(k.replace(".", "\\.") for k in keys) + ")$"
    out = run(["config", "--get-regexp", pattern], top, check=False).stdout.splitlines()
    return out[-1].split(" ", 1)[1] if out and " " in out[-1] else None


def _signer_message(signer_stderr: str, git_stderr: str) -> str:
    """One line: what the signing program said (without gpg's status lines), else what git said."""
    said = [ln.strip() for ln in signer_stderr.splitlines() if ln.strip() and not ln.startswith("[GNUPG:]")]
    if not said:
        boring = ("failed to write commit object", "gpg failed to sign the data")
        for ln in git_stderr.splitlines():
            ln = ln.strip().removeprefix("error: ").removeprefix("fatal: ").strip()
            if ln and not any(b in ln for b in boring):
                said.append(ln)
    if not said:
        said = [_last_line(git_stderr) or "the signing program failed"]
    text = "; ".join(said)
    return text if len(text) <= 300 else text[:297] + "..."
