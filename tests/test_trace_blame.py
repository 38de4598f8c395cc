"""`mdspec blame`: each line of code back to the spec words behind it, on a history made by real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import FOREGROUND, Repo
from runhelpers import QUIET, spec_commit
from tracerepo import HAND_LINE, Built, built_fixture  # noqa: F401


def blame_json(repo: Repo, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(repo.mdspec("blame", "--json", *args).stdout)
    return data


def groups(data: dict[str, Any]) -> list[tuple[int, int, str | None]]:
    return [(g["first"], g["last"], g["commit"]) for g in data["lines"]]


def test_each_line_names_its_generated_commit_and_the_spec_commit_behind_it(built: Built) -> None:
    data = blame_json(built.repo, "src/app.py")
    # Lines 1-3 came with the first run, line 4 was rewritten by the run of C, line 5 was written by hand.
    assert groups(data) == [(1, 3, built.ga), (4, 4, built.gc), (5, 5, built.hand)]
    assert data["commits"][built.ga]["kind"] == "generated"
    assert data["commits"][built.ga]["implements"] == [built.a]
    assert data["commits"][built.gc]["implements"] == [built.c]
    assert data["commits"][built.hand]["kind"] == "hand"
    assert data["commits"][built.hand]["implements"] == []
    assert data["lines"][2]["text"] == [HAND_LINE]


def test_the_spec_hunks_are_the_words_that_changed_shortest_first_with_their_section(built: Built) -> None:
    data = blame_json(built.repo, "src/app.py")
    change = data["specs"][built.c]["hunks"]
    assert change == [
        {
            "path": "spec/app.md",
            "section": "Farewell",
            "line": 12,
            "added": ["Say goodbye politely."],
            "removed": ["Say goodbye."],
        }
    ]
    first = data["specs"][built.a]["hunks"]
    # A new file is one hunk in git's diff; it is cut at its `## ` headings so each piece names its section.
    assert [h["section"] for h in first] == ["", "Farewell", "Greeting"]  # 2, 2 and 3 lines with words
    assert "Say hello." in first[2]["added"]


def test_run_and_check_come_from_the_trailers(built: Built) -> None:
    data = blame_json(built.repo, "src/app.py:4")
    run = built.repo.git("log", "-1", "--format=%(trailers:key=Mdspec-Run,valueonly)", built.gc).strip()
    assert data["commits"][built.gc]["run"] == run
    assert data["commits"][built.gc]["check"] == "skipped"


def test_a_line_range(built: Built) -> None:
    assert groups(blame_json(built.repo, "src/app.py:2-4")) == [(2, 3, built.ga), (4, 4, built.gc)]
    assert groups(blame_json(built.repo, "src/app.py:5")) == [(5, 5, built.hand)]


def test_text_shows_code_origin_and_spec_words(built: Built) -> None:
    out = built.repo.mdspec("blame", "src/app.py").stdout
    assert f"generated: {built.gc[:10]}" in out
    assert f"implements {built.c[:10]}" in out
    assert "spec/app.md:12 § Farewell" in out
    assert "+ Say goodbye politely." in out
    assert "- Say goodbye." in out
    assert f"by hand: {built.hand[:10]} 'tune the greeting by hand'" in out
    assert f"  5  {HAND_LINE}" in out


def test_lines_of_a_reverted_generated_commit_are_gone_but_its_revision_still_blames(built: Built) -> None:
    now = blame_json(built.repo, "src/app.py")
    assert built.gd not in now["commits"]
    then = blame_json(built.repo, "--rev", built.gd, "src/app.py")
    assert groups(then)[-1] == (5, 6, built.gd)
    assert then["commits"][built.gd]["implements"] == [built.d]
    sections = {h["section"] for h in then["specs"][built.d]["hunks"]}
    assert sections == {"Errors"}


def test_a_rebased_history_resolves_spec_commits_by_content(built: Built) -> None:
    data = blame_json(built.rebased, "src/app.py")
    ga, gc, hand = (built.renamed[s] for s in (built.ga, built.gc, built.hand))
    assert groups(data) == [(1, 3, ga), (4, 4, gc), (5, 5, hand)]
    # The trailers still name the old shas; the spec commits of this history are found by content.
    assert data["commits"][gc]["implements"] == [built.renamed[built.c]]
    assert data["specs"][built.renamed[built.c]]["found"] == "content"
    assert data["commits"][ga]["implements"] == [built.renamed[built.a]]
    out = built.rebased.mdspec("blame", "src/app.py:4").stdout
    assert "found by content" in out


def test_a_fresh_clone_without_run_records_blames_the_same(built: Built, tmp_path: Path) -> None:
    clone = Repo(tmp_path / "clone")
    built.repo.git("clone", "-q", str(built.repo.top), str(clone.top))
    assert not clone.state.exists()
    assert groups(blame_json(clone, "src/app.py")) == groups(blame_json(built.repo, "src/app.py"))


def test_uncommitted_lines_say_so(built: Built, tmp_path: Path) -> None:
    clone = Repo(tmp_path / "clone")
    built.repo.git("clone", "-q", str(built.repo.top), str(clone.top))
    path = clone.top / "src/app.py"
    path.write_text(path.read_text() + "say('', 'not yet')\n")
    data = blame_json(clone, "src/app.py")
    assert groups(data)[-1] == (6, 6, None)
    assert "not committed yet" in clone.mdspec("blame", "src/app.py:6").stdout


def test_from_a_subdirectory_paths_are_relative_to_it(built: Built) -> None:
    sub = Repo(built.repo.top / "src")
    data = blame_json(sub, "app.py:4")
    assert data["file"] == "src/app.py"
    assert groups(data) == [(4, 4, built.gc)]


def test_bad_targets_are_one_line_errors(built: Built, tmp_path: Path) -> None:
    cases = {
        "nope.py": "nope.py: no such file",
        "src/app.py:9-99": "has only 5 lines",
        "src/app.py:0": "1 <= FIRST <= LAST",
        "src/app.py:4-2": "1 <= FIRST <= LAST",
        "src": "src: a directory",
        str(tmp_path / "elsewhere.py"): "not inside the repository",
    }
    for arg, words in cases.items():
        proc = built.repo.mdspec("blame", arg, check=False)
        assert proc.returncode == 1, arg
        assert words in proc.stderr, (arg, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_file_whose_name_ends_in_a_number_after_a_colon(repo: Repo) -> None:
    repo.commit("odd name", {"notes:12": "one\ntwo\n"})
    data = blame_json(repo, "notes:12")
    assert data["file"] == "notes:12"
    assert [g["last"] for g in data["lines"]] == [2]
    assert data["commits"][data["lines"][0]["commit"]]["kind"] == "hand"


def test_a_squash_merge_of_spec_and_code(mdrepo: Repo, tmp_path: Path) -> None:
    mdrepo.git("switch", "-q", "-c", "feature")
    spec = spec_commit(mdrepo, "# App\n\n## Output\n\nWrite out.txt.\n", env=FOREGROUND)
    assert mdrepo.head() != spec, mdrepo.last_output
    mdrepo.git("switch", "-q", "main")
    mdrepo.git("merge", "--squash", "feature")
    mdrepo.git("commit", "-q", "--no-edit", env=QUIET)  # git's squash message carries both commits'
    squash = mdrepo.head()
    data = blame_json(mdrepo, "out.txt")
    assert groups(data) == [(1, 1, squash)]
    # The spec commit is off the branch but still in this clone: its words, said to be from elsewhere.
    assert data["commits"][squash]["implements"] == [spec]
    assert data["specs"][spec]["found"] == "elsewhere"
    # A fresh clone of main alone never had it: the squash commit's own spec change is the answer.
    clone = Repo(tmp_path / "clone")
    mdrepo.git("clone", "-q", "--no-local", "--single-branch", "-b", "main", str(mdrepo.top), str(clone.top))
    data = blame_json(clone, "out.txt")
    assert data["commits"][squash]["implements"] == [squash]
    assert data["specs"][squash]["found"] == "squashed"
    hunks = data["specs"][squash]["hunks"]
    assert [(h["section"], h["added"]) for h in hunks] == [
        ("", ["# App", ""]),
        ("Output", ["## Output", "", "Write out.txt."]),
    ]
    assert "squashed: the spec change came in this same commit" in clone.mdspec("blame", "out.txt").stdout
