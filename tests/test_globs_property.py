"""The glob matcher against the standard library's `fnmatch.fnmatchcase`, on generated patterns.

The matcher is written by hand (the hook cannot afford to import `re`), so it is held to fnmatch where the
two are meant to agree. The intended differences, which these properties build in rather than test away:

- `*`, `?` and classes never match `/`: a glob is matched segment by segment (fnmatch's `*` crosses `/`);
- `**` as a whole segment spans zero or more segments; elsewhere it is refused;
- a glob also covers everything under the directories it matches (`spec` covers `spec/a.md`);
- an unbalanced `[` or a backslash is refused with a `GlobError` (fnmatch takes them literally).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from mdspec.fast.globs import Globs

# Small alphabets make collisions between pattern and name likely, so matches are exercised, not only misses.
_NAME_CHARS = "abc.-"
_TOKENS = ["a", "b", "c", ".", "-", "*", "?", "[ab]", "[!a]", "[a-b]", "[!b-c]", "[.-]"]

names = st.text(alphabet=_NAME_CHARS, min_size=1, max_size=6)
segments = st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=5).map("".join).filter(lambda s: "**" not in s)
paths = st.lists(names, min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(segments, names)
def test_one_segment_agrees_with_fnmatch(pattern: str, name: str) -> None:
    assert Globs([f"x/{pattern}"]).matches(f"x/{name}") is fnmatchcase(name, pattern)


@settings(max_examples=300, deadline=None)
@given(st.lists(segments, min_size=1, max_size=3), paths)
def test_a_glob_matches_a_path_when_its_segments_match_a_leading_directory(globs: list[str], parts: list[str]) -> None:
    # Segment-wise fnmatch over the first len(globs) segments; the rest is under a matched directory.
    expected = len(parts) >= len(globs) and all(fnmatchcase(p, g) for p, g in zip(parts, globs, strict=False))
    assert Globs(["/".join(globs)]).matches("/".join(parts)) is expected


@settings(max_examples=300, deadline=None)
@given(segments, paths)
def test_double_star_finds_a_segment_at_any_depth(pattern: str, parts: list[str]) -> None:
    expected = any(fnmatchcase(p, pattern) for p in parts)
    assert Globs([f"**/{pattern}"]).matches("/".join(parts)) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(segments, min_size=1, max_size=3), paths)
def test_a_directory_that_could_hold_a_match_is_never_pruned(globs: list[str], parts: list[str]) -> None:
    # `could_contain` lets a tree walk skip subtrees: pruning a directory that holds a match would lose it.
    glob = Globs(["/".join(globs)])
    if glob.matches("/".join(parts)):
        for depth in range(len(parts)):
            assert glob.could_contain("/".join(parts[:depth]))
