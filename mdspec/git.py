"""Everything mdspec does with git. The only module that imports pygit2.

pygit2 reads objects, walks history and writes commits; the git CLI is used where git's own safety is
wanted (worktrees, updating a checkout without clobbering edits, compare-and-swap ref updates), always
with the `GIT_*` variables a hook inherits cleared, so no command aims at the wrong repository or index.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from mdspec.errors import GitError, NotARepository
from mdspec.globs import Globs

ZERO = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _entry(tree: pygit2.Tree | None, name: str) -> pygit2.Object | None:
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


def _info(c: pygit2.Commit) -> CommitInfo:
    return CommitInfo(
        sha=str(c.id),
        parents=tuple(str(p) for p in c.parent_ids),
        message=c.message,
        author_name=c.author.name,
        author_email=c.author.email,
        tree=str(c.tree_id),
    )


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without git's hook variables (GIT_DIR, GIT_INDEX_FILE, GIT_AUTHOR_* …)."""
    src = os.environ if base is None else base
    return {k: v for k, v in src.items() if not k.startswith("GIT_")}


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
        errors=errors,
    )
    if check and proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise GitError(f"git {' '.join(args[:3])} failed: {msg[-1] if msg else f'exit {proc.returncode}'}")
    return proc


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    message: str
    author_name: str
    author_email: str
    tree: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


class Repo:
    """A non-bare repository with a working tree."""

    def __init__(self, start: Path) -> None:
        path = pygit2.discover_repository(str(start))
        if path is None:
            raise NotARepository(f"{start} is not inside a git repository: run mdspec inside one")
        self.pg = pygit2.Repository(path)
        if self.pg.is_bare or self.pg.workdir is None:
            raise NotARepository(f"{path} is a bare repository: mdspec needs a working tree")
        self.top = Path(self.pg.workdir).resolve()
        self.git_dir = Path(self.pg.path).resolve()
        common = self.git_dir
        if (self.git_dir / "commondir").is_file():
            common = (self.git_dir / (self.git_dir / "commondir").read_text().strip()).resolve()
        self.common_dir = common

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
        proc = run(["update-ref", "-m", message, ref, new, old or ZERO], self.top, check=False)
        return proc.returncode == 0

    def delete_ref(self, ref: str) -> None:
        run(["update-ref", "-d", ref], self.top, check=False)

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

    def _walk_changes(self, old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str, globs: Globs,
                      out: list[str]) -> None:
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

    def diff_text(self, old_sha: str | None, new_sha: str, paths: list[str], limit: int) -> str:
        """A unified diff from `old_sha` (None: empty tree) to `new_sha` for `paths`, capped at `limit` chars."""
        if not paths:
            return ""
        args = ["diff", "--no-color", "--no-ext-diff", "-M", old_sha or EMPTY_TREE, new_sha]
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

    def create_commit(self, tree: str, parent: str, message: str, author: Identity, committer: Identity) -> str:
        a = pygit2.Signature(author.name, author.email)
        c = pygit2.Signature(committer.name, committer.email)
        oid = self.pg.create_commit(None, a, c, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=parent)])
        return str(oid)

    def rebase_commit(self, sha: str, onto: str, committer: Identity) -> str | None:
        """Replay commit `sha` (one parent) onto `onto` in memory; None when it conflicts."""
        c = self._commit(sha)
        onto_commit = self._commit(onto)
        index = self.pg.merge_trees(self._tree(str(c.parent_ids[0])), onto_commit.tree, c.tree)
        if index.conflicts is not None:
            return None
        tree = index.write_tree(self.pg)
        sig = pygit2.Signature(committer.name, committer.email)
        return str(self.pg.create_commit(None, c.author, sig, c.message, tree, [onto_commit.id]))

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

    def add_note(self, sha: str, text: str, ref: str, who: Identity) -> None:
        sig = pygit2.Signature(who.name, who.email)
        self.pg.create_note(text, sig, sig, sha, ref, True)
