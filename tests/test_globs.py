import pytest

from mdspec.fast.globs import GlobError, Globs, check_glob


@pytest.mark.parametrize(
    ("globs", "path", "expected"),
    [
        (["spec/**"], "spec/a.md", True),
        (["spec/**"], "spec/deep/er/a.md", True),
        (["spec/**"], "specs/a.md", False),
        (["TASK.md"], "TASK.md", True),
        (["TASK.md"], "sub/TASK.md", False),
        (["spec"], "spec/a.md", True),
        (["**/*.md"], "a.md", True),
        (["**/*.md"], "x/y/a.md", True),
        (["**/*.md"], "x/y/a.txt", False),
        (["docs/*.md"], "docs/a.md", True),
        (["docs/*.md"], "docs/x/a.md", False),
        (["docs/*.md"], "docs/x.md/a.txt", True),  # a directory matching the glob covers its files
        (["docs/*.txt"], "docs/a.md", False),
        (["src/[ab]?.py"], "src/ax.py", True),
        (["src/[!ab]?.py"], "src/ax.py", False),
        (["src/[a-c]*.py"], "src/cat.py", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["a/**/z"], "a/b/c/y", False),
    ],
)
def test_matches(globs: list[str], path: str, expected: bool) -> None:
    assert Globs(globs).matches(path) is expected


@pytest.mark.parametrize("bad", ["", "/", "a/**b", "a\\b", "a//b", "src/[ab"])
def test_bad_globs_are_refused(bad: str) -> None:
    with pytest.raises(GlobError):
        check_glob(bad)
