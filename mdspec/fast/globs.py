"""Path globs for watched and protected paths.

Globs are anchored at the repository root and use `/` as separator: `*` and `?` stay within one path
segment, `**` spans any number of segments (`spec/**` is everything under spec/), `[...]` is a class,
and a glob naming a directory (`spec`, `spec/`) covers everything under it.

Hand-written rather than built on `re`/`fnmatch`: the hook fast path matches globs on every commit and
importing `re` alone costs about half an interpreter start-up.
"""

from __future__ import annotations


class GlobError(ValueError):
    """A glob that cannot be used; the message says why."""


def _split(glob: str) -> list[str]:
    g = glob.strip()
    if not g.strip("/"):
        raise GlobError("empty glob")
    if "\\" in g:
        raise GlobError(f"backslash in {glob!r}: use '/' as the separator")
    segs = g.strip("/").split("/")
    for s in segs:
        if s == "":
            raise GlobError(f"empty path segment in {glob!r}")
        if "**" in s and s != "**":
            raise GlobError(f"'**' must be a whole path segment in {glob!r}")
        if s.count("[") != s.count("]"):
            raise GlobError(f"unbalanced '[' in {glob!r}")
    if segs[-1] != "**":
        segs.append("**?")  # a directory glob covers what is under it (zero or more segments)
    return segs


def _seg_match(pat: str, name: str) -> bool:
    """fnmatch for one path segment, without `re`."""
    p = n = 0
    star_p, star_n = -1, 0
    while n < len(name):
        if p < len(pat):
            c = pat[p]
            if c == "*":
                star_p, star_n = p, n
                p += 1
                continue
            if c == "[":
                end = pat.find("]", p + 2)
                if end > 0:
                    body = pat[p + 1 : end]
                    neg = body[:1] == "!"
                    if neg:
                        body = body[1:]
                    hit = False
                    i = 0
                    while i < len(body):
                        if i + 2 < len(body) and body[i + 1] == "-":
                            hit = hit or body[i] <= name[n] <= body[i + 2]
                            i += 3
                        else:
                            hit = hit or body[i] == name[n]
                            i += 1
                    if hit != neg:
                        p, n = end + 1, n + 1
                        continue
            elif c == "?" or c == name[n]:
                p, n = p + 1, n + 1
                continue
        if star_p >= 0:
            p, star_n = star_p + 1, star_n + 1
            n = star_n
            continue
        return False
    return all(c == "*" for c in pat[p:])


def _match(segs: list[str], parts: list[str]) -> bool:
    if not segs:
        return not parts
    head = segs[0]
    if head in ("**", "**?"):
        rest = segs[1:]
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and _seg_match(head, parts[0]) and _match(segs[1:], parts[1:])


def _could_contain(segs: list[str], parts: list[str]) -> bool:
    """True when some path under the directory `parts` could match `segs`."""
    if not parts:
        return True
    if not segs:
        return False
    head = segs[0]
    if head in ("**", "**?"):
        return True
    return _seg_match(head, parts[0]) and _could_contain(segs[1:], parts[1:])


def _is_literal(seg: str) -> bool:
    return not any(c in seg for c in "*?[")


class Globs:
    """A compiled set of globs; `matches(path)` is true when any of them matches."""

    __slots__ = ("_compiled", "patterns")

    def __init__(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.patterns = tuple(patterns)
        self._compiled = [_split(g) for g in self.patterns]

    def matches(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        return any(_match(segs, parts) for segs in self._compiled)

    def could_contain(self, directory: str) -> bool:
        """Whether anything under `directory` could match: lets a tree walk skip whole subtrees."""
        parts = [p for p in directory.strip("/").split("/") if p]
        return any(_could_contain(segs, parts) for segs in self._compiled)

    def child_names(self, directory: str) -> set[str] | None:
        """The only entry names directly under `directory` that could lead to a match, or None for any.

        With `spec/**` and `TASK.md`, the root's candidates are just {"spec", "TASK.md"}: a tree walk looks
        those up instead of scanning every entry of a wide directory.
        """
        parts = [p for p in directory.strip("/").split("/") if p]
        names: set[str] = set()
        for segs in self._compiled:
            if not _could_contain(segs, parts):
                continue
            # Position of the next segment after consuming `parts`; only literal-only prefixes qualify.
            if any(s in ("**", "**?") for s in segs[: len(parts) + 1]):
                return None
            nxt = segs[len(parts)] if len(parts) < len(segs) else None
            if nxt is None or not _is_literal(nxt) or not all(_is_literal(s) for s in segs[: len(parts)]):
                return None
            names.add(nxt)
        return names


def check_glob(glob: str) -> None:
    """Raise GlobError when `glob` is not usable."""
    _split(glob)
