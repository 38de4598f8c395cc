"""The history behind traceability, and spec sections, read from real repositories."""

from __future__ import annotations

from conftest import FOREGROUND, Repo
from runhelpers import spec_commit
from tracerepo import Built, built_fixture  # noqa: F401

from mdspec import config
from mdspec.git import Hunk
from mdspec.git import Repo as GitRepo
from mdspec.trace import history
from mdspec.trace.sections import _split, headings, section_at


def load(repo: Repo, stop_at: str | None = None) -> history.History:
    g = GitRepo(repo.top)
    return history.load(g, g.rev_parse("HEAD"), config.load(repo.top), stop_at=stop_at)


def test_spec_commits_and_what_implemented_them(built: Built) -> None:
    h = load(built.repo)
    assert [s.sha for s in h.specs] == [built.setup, built.a, built.b, built.c, built.d]
    assert [g.sha for g in h.generated] == [built.ga, built.gb, built.gc, built.gd]
    assert [g.specs for g in h.generated] == [(built.a,), (built.b,), (built.c,), (built.d,)]
    assert [g.reverted_by for g in h.generated] == [None, None, None, built.rev]
    assert h.implementations(built.c)[0].sha == built.gc
    assert h.implementations(built.setup) == ()
    assert h.spec(built.b) is not None
    assert h.spec(built.gb) is None


def test_a_rebased_history_matches_by_content_and_reverts_by_run(built: Built) -> None:
    h = load(built.rebased)
    r = built.renamed
    assert [g.specs for g in h.generated] == [(r[built.a],), (r[built.b],), (r[built.c],), (r[built.d],)]
    assert [g.named for g in h.generated] == [(built.a,), (built.b,), (built.c,), (built.d,)]
    assert [g.reverted_by for g in h.generated] == [None, None, None, r[built.rev]]


def test_stopping_at_a_spec_commit_reads_everything_that_can_implement_it(built: Built) -> None:
    full = load(built.repo)
    for sha in (built.a, built.c, built.d):
        part = load(built.repo, stop_at=sha)
        assert part.implementations(sha) == full.implementations(sha)
    assert [s.sha for s in load(built.repo, stop_at=built.c).specs] == [built.c, built.d]


def test_a_reverted_revert_counts_for_nothing(mdrepo: Repo) -> None:
    spec = spec_commit(mdrepo, "# App\nSay hi.\n", env=FOREGROUND)
    generated = mdrepo.head()
    mdrepo.git("revert", "--no-edit", generated, env={"MDSPEC_RUNNING": "1"})
    mdrepo.git("revert", "--no-edit", "HEAD", env={"MDSPEC_RUNNING": "1"})
    h = load(mdrepo)
    [impl] = h.implementations(spec)
    assert impl.sha == generated
    assert impl.reverted_by is None


def test_headings_ignore_fenced_code_and_deeper_levels() -> None:
    text = "# T\n## One\nx\n```\n## not a heading\n```\n### deeper\n## Two ##\ny\n"
    assert headings(text) == [(2, "One"), (8, "Two")]
    heads = headings(text)
    assert section_at(heads, 1) == ""
    assert section_at(heads, 2) == "One"
    assert section_at(heads, 7) == "One"
    assert section_at(heads, 9) == "Two"


def test_a_hunk_is_cut_at_the_headings_it_adds() -> None:
    heads = [(3, "A"), (6, "B")]
    h = Hunk("spec/x.md", 0, 1, ("# X", "", "## A", "a", "", "## B", "b"), ())
    pieces = _split(h, heads)
    assert [(p.section, p.line, p.added) for p in pieces] == [
        ("", 1, ("# X", "")),
        ("A", 3, ("## A", "a", "")),
        ("B", 6, ("## B", "b")),
    ]
    removal = _split(Hunk("spec/x.md", 4, 4, (), ("gone",)), heads)
    assert [(p.section, p.line, p.removed) for p in removal] == [("A", 5, ("gone",))]
    blank = _split(Hunk("spec/x.md", 0, 5, ("",), ()), heads)
    assert [(p.section, p.added) for p in blank] == [("A", ("",))]
