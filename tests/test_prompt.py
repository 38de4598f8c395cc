"""The system prompt is byte-stable; the first message holds each pending spec commit, oldest first."""

from __future__ import annotations

import pytest
from conftest import Repo

from mdspec import config
from mdspec.agents import prompt
from mdspec.git import Repo as GitRepo
from mdspec.run import pending


def _render(repo: Repo) -> prompt.Prompt:
    g = GitRepo(repo.top)
    cfg = config.load(repo.top)
    tip = g.resolve_ref("refs/heads/main") or ""
    ps = pending.find(g, tip, cfg)
    return prompt.render(g, cfg, tip, ps.pending)


def test_pending_commits_in_order_with_messages_and_diffs(mdrepo: Repo) -> None:
    mdrepo.commit("spec: first\n\nWhy the first.", {"spec/a.md": "alpha line\n"})
    mdrepo.commit("spec: second", {"spec/b.md": "beta line\n", "src/code.py": "x = 1\n"})
    p = _render(mdrepo)
    first, second = p.task.index("Spec commit 1 of 2"), p.task.index("Spec commit 2 of 2")
    assert first < second
    assert "Why the first." in p.task
    assert "+alpha line" in p.task
    assert "+beta line" in p.task
    assert "x = 1" not in p.task  # only watched paths' diffs
    assert "src/code.py" in p.task  # but the file is listed
    assert "last commits" in p.task
    assert "notes/README.md: Notes" in p.task


def test_system_prompt_is_byte_stable_and_carries_rules(mdrepo: Repo) -> None:
    mdrepo.commit("spec: one", {"spec/a.md": "one\n"})
    a = _render(mdrepo).system
    mdrepo.commit("spec: two", {"spec/a.md": "two\n"})
    b = _render(mdrepo).system
    assert a == b
    assert "`spec/**`" in a
    assert "`.mdspec.toml`" in a
    assert "`AGENTS.md`" in a
    assert "# The repository's AGENTS.md" in a  # the repo's own rules follow mdspec's
    assert "notes/" in a


def test_task_md_text_is_presented_as_the_task(mdrepo: Repo) -> None:
    mdrepo.commit("task: fix the crash", {"TASK.md": "The program crashes on empty input. Fix it.\n"})
    p = _render(mdrepo)
    assert "The task to complete (TASK.md as of this commit)" in p.task
    assert "crashes on empty input" in p.task


def test_huge_diffs_are_capped(mdrepo: Repo) -> None:
    mdrepo.commit("spec: huge", {"spec/big.md": "word " * 200_000})
    p = _render(mdrepo)
    assert "more characters of this diff cut" in p.task
    assert len(p.task) < prompt.DIFF_LIMIT + 20_000


def test_long_commit_messages_are_capped_with_a_note(mdrepo: Repo) -> None:
    body = "why " * 30_000
    mdrepo.commit(f"spec: long story\n\n{body}", {"spec/a.md": "alpha\n"})
    p = _render(mdrepo)
    assert "more characters of this commit message cut" in p.task
    assert p.task.count("why ") < prompt.MESSAGE_LIMIT // 4 + 10
    assert "+alpha" in p.task  # the diff is still there after the cut message


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("../outside-secret.txt", "outside the repository"),
        ("/etc/hostname", "outside the repository"),
        ("spec/missing.md", "that does not exist (a dangling link)"),
    ],
)
def test_linked_task_md_is_refused_in_one_line(mdrepo: Repo, target: str, why: str) -> None:
    secret = mdrepo.top.parent / "outside-secret.txt"
    secret.write_text("SECRET-OUTSIDE-THE-REPO\n")
    (mdrepo.top / "TASK.md").symlink_to(target)
    sha = mdrepo.commit("task: linked")
    with pytest.raises(prompt.LinkedSpecPath) as info:
        _render(mdrepo)
    msg = str(info.value)
    assert msg == (
        f"TASK.md in spec commit {sha[:12]} is a symbolic link to {target!r}, {why}: mdspec does not "
        "follow it; commit the file itself in its place, then `mdspec run`"
    )


def test_a_link_inside_the_repository_is_only_text(mdrepo: Repo) -> None:
    mdrepo.commit("spec: real", {"spec/real.md": "the real spec\n"})
    (mdrepo.top / "spec" / "alias.md").symlink_to("real.md")
    mdrepo.commit("spec: alias")
    p = _render(mdrepo)
    assert "+real.md" in p.task  # the diff shows the link's target name


def test_placeholders_in_a_spec_commit_reach_the_prompt_verbatim(mdrepo: Repo) -> None:
    # `{{commits}}` comes before `{{listing}}` and `{{notes}}` in task.md: replaced one after another, the
    # listing and the notes index would be expanded inside the spec commit's own text.
    text = "Show {{listing}} here, then {{notes}}, {{notes_dir}}, {{file_count}}, {{plural}} and {{commits}}.\n"
    mdrepo.commit("spec: templating {{listing}} {{notes}}", {"spec/tpl.md": text, "src/marker_file.py": "x = 1\n"})
    p = _render(mdrepo)
    assert "+" + text.rstrip("\n") in p.task
    assert "spec: templating {{listing}} {{notes}}" in p.task
    assert p.task.count("src/marker_file.py") == 1  # the listing itself, once, outside the spec's text
    assert p.task.count("notes/README.md: Notes") == 1
