"""The spec map's parts on their own: which sections a spec commit changed, sections gone from a file,
progress on a terminal, the text table, and the page's escaping and cost lines."""

from __future__ import annotations

import io

from conftest import Repo

from mdspec import config
from mdspec import git as mgit
from mdspec.commands.spec_map import Progress, _table
from mdspec.trace import history, html
from mdspec.trace.sections import spec_sections
from mdspec.trace.specmap import CodeFile, Lines, RunEntry, Section, SpecFile, SpecMap, compute

SPEC = "# Tool\n\nIntro.\n\n## One\n\nDo one.\n\n## Two\n\nDo two.\nAnd more.\n"


def generated(repo: Repo, spec: str, files: dict[str, str], run: str) -> str:
    """A generated commit made by hand: the trailers a run writes."""
    return repo.commit(
        f"mdspec: implement\n\nMdspec-Implements: {spec}\nMdspec-Run: {run}\nMdspec-Check: skipped", files
    )


def test_sections_of_added_removed_and_blank_lines(repo: Repo) -> None:
    a = repo.commit("spec", {"spec/t.md": SPEC})
    g = mgit.Repo(repo.top)
    assert spec_sections(g, a, ["spec/t.md"]) == {("spec/t.md", s) for s in ("", "One", "Two")}
    # Removing a whole section maps to it (where the lines were), not to the section before the gap.
    b = repo.commit("drop two", {"spec/t.md": SPEC.split("## Two")[0]})
    assert spec_sections(g, b, ["spec/t.md"]) == {("spec/t.md", "Two")}
    # A change of blank lines only maps to the section it sits in.
    c = repo.commit("space", {"spec/t.md": SPEC.split("## Two")[0].replace("Do one.\n", "Do one.\n\n\n")})
    assert spec_sections(g, c, ["spec/t.md"]) == {("spec/t.md", "One")}


def test_a_section_gone_from_the_file_keeps_its_code(repo: Repo) -> None:
    a = repo.commit("spec", {"spec/t.md": SPEC})
    generated(repo, a, {"t.py": "one()\ntwo()\nmore()\n"}, "20260101-000000-aaa")
    b = repo.commit("drop two", {"spec/t.md": SPEC.split("## Two")[0]})
    generated(repo, b, {"t.py": "one()\n"}, "20260101-000000-bbb")
    g = mgit.Repo(repo.top)
    tip = g.rev_parse("HEAD")
    m = compute(g, history.load(g, tip, config.Config(path=None)))
    (f,) = m.files
    assert [(s.name, s.present, s.spec_commits) for s in f.sections] == [
        ("", True, 1),
        ("One", True, 1),
        ("Two", False, 2),
    ]
    two = f.sections[2]
    assert two.code == (CodeFile("t.py", Lines(2, 3, 2), Lines()),)
    assert f.sections[1].code == (CodeFile("t.py", Lines(1, 3, 0), Lines()),)
    # No run records: the timeline still shows both runs, from their generated commits, cost unknown.
    assert [(r.run_id, r.cost_usd, r.state) for r in f.runs] == [
        ("20260101-000000-aaa", None, "landed"),
        ("20260101-000000-bbb", None, "landed"),
    ]
    assert m.origins("t.py").origins[0].section == "Two"  # most commits first


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    tty = Terminal()
    p = Progress(tty, after=0)
    p("read 1,000 commits")
    p.done()
    assert tty.getvalue() == "\r\x1b[Kmdspec spec-map: read 1,000 commits…\r\x1b[K"
    lines = io.StringIO()
    p = Progress(lines, after=0)
    p("read 1,000 commits")
    p.done()
    assert lines.getvalue() == "mdspec spec-map: read 1,000 commits…\n"


def test_progress_waits_for_its_threshold() -> None:
    tty = Terminal()
    p = Progress(tty, after=3600)
    p("read 1,000 commits")
    p.done()
    assert tty.getvalue() == ""


def test_table_aligns_counts_right_and_text_left() -> None:
    assert _table([["a", "1", "x"], ["longer", "10", ""]]) == ["a        1  x", "longer  10"]


def test_page_escapes_and_totals_costs() -> None:
    runs = (
        RunEntry("r1", 0.0, "a" * 40, "<script>x</script>", (1, 2, 3, 4), 0.01, "landed"),
        RunEntry("r<2>", 86400.0, None, "", None, None, "failed"),
    )
    f = SpecFile(
        "spec/<a>.md",
        2,
        (Section("<b>", False, 1, (CodeFile("x&y.py", Lines(1, 2, 0), Lines(1, 1, 1)),)),),
        (),
        runs,
    )
    page = html.page(SpecMap("f" * 40, (f,), (), 1, 1, 0), [f], [], "t<i>")
    for tag in ("<script", "<b>", "<i>"):
        assert tag not in page
    for shown in ("&lt;script&gt;x&lt;/script&gt;", "## &lt;b&gt;", "spec/&lt;a&gt;.md", "x&amp;y.py", "r&lt;2&gt;"):
        assert shown in page
    assert "(no longer in the file)" in page
    assert "cost $0.0100 + 1 unknown" in page
    assert "reverted: 1 commit +1 -1" in page
    assert "1970-01-02 00:00" in page  # dates in UTC
    assert '<td class="n">?</td>' in page  # no record: tokens unknown, not 0


def test_per_file_diffs_agree_with_git(repo: Repo) -> None:
    """file_changes says what `git diff-tree --numstat` says: additions, edits, deletions, a file that
    becomes a directory, a binary file, nested directories."""
    repo.commit("add", {"a.txt": "1\n2\n3\n", "d/e/f.txt": "x\n", "bin.dat": "\0\1\2", "p": "file\n"})
    repo.commit("edit", {"a.txt": "1\ntwo\n3\n4\n", "d/e/g.txt": "new\n", "bin.dat": "\0\3"})
    (repo.top / "p").unlink()
    (repo.top / "d/e/f.txt").unlink()
    repo.commit("reshape", {"p/inside.txt": "now a directory\n"})
    g = mgit.Repo(repo.top)
    for sha in repo.git("rev-list", "HEAD").split():
        numstat = repo.git("diff-tree", "-r", "--root", "--no-renames", "--numstat", "--no-commit-id", sha)
        expected = []
        for line in numstat.splitlines():
            added, removed, path = line.split("\t")
            expected.append((path, 0 if added == "-" else int(added), 0 if removed == "-" else int(removed)))
        assert [(c.path, c.added, c.removed) for c in g.file_changes(sha)] == expected, sha
    assert [c.path for c in g.file_changes(repo.head())] == ["d/e/f.txt", "p", "p/inside.txt"]
