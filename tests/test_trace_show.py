"""`mdspec show`: from a spec change to everything it produced, on a history made by real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Repo
from runhelpers import QUIET, last_run, runs, spec_commit
from test_history import amend_during_its_run, waiting  # noqa: F401
from tracerepo import Built, built_fixture  # noqa: F401


def show_json(repo: Repo, rev: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(repo.mdspec("show", "--json", rev).stdout)
    return data


def run_id(repo: Repo, generated: str) -> str:
    return repo.git("log", "-1", "--format=%(trailers:key=Mdspec-Run,valueonly)", generated).strip()


def test_a_spec_change_its_generated_commit_files_and_run(built: Built) -> None:
    data = show_json(built.repo, built.c)
    assert data["sha"] == built.c
    assert data["state"] == "implemented"
    assert data["paths"] == ["spec/app.md"]
    assert "+Say goodbye politely." in data["diff"]
    assert "-Say goodbye." in data["diff"]
    [gen] = data["generated"]
    assert gen["sha"] == built.gc
    assert gen["current"] is True
    assert gen["files"] == [{"path": "src/app.py", "added": 1, "removed": 1}]
    record = json.loads((built.repo.state / "runs" / run_id(built.repo, built.gc) / "run.json").read_text())
    assert gen["run_record"]["id"] == record["id"]
    assert gen["run_record"]["status"] == record["status"] == "landed"
    assert gen["run_record"]["turns"] == record["turns"]
    assert gen["run_record"]["check"] == record["check"]
    assert gen["run_record"]["source"] == "record"
    assert data["other_runs"] == []


def test_text(built: Built) -> None:
    out = built.repo.mdspec("show", built.c).stdout
    assert out.startswith(f"spec commit {built.c[:10]} ")
    assert "state: implemented" in out
    assert "+Say goodbye politely." in out
    assert f"{built.gc[:10]} 'mdspec: Compile the spec'" in out
    assert "[current]" in out
    assert "src/app.py  +1 -1" in out
    assert f"run {run_id(built.repo, built.gc)}: landed" in out
    assert "check skipped" in out


def test_a_reverted_implementation_is_marked_and_the_spec_is_reverted(built: Built) -> None:
    data = show_json(built.repo, built.d)
    assert data["state"] == "reverted"
    [gen] = data["generated"]
    assert gen["sha"] == built.gd
    assert gen["current"] is False
    assert gen["reverted_by"] == built.rev
    assert gen["files"] == [{"path": "src/app.py", "added": 2, "removed": 0}]
    out = built.repo.mdspec("show", built.d).stdout
    assert f"[reverted by {built.rev[:10]}]" in out
    assert "state: reverted" in out


def test_sections_of_the_change(built: Built) -> None:
    data = show_json(built.repo, built.a)
    assert [h["section"] for h in data["hunks"]] == ["", "Greeting", "Farewell"]
    assert data["generated"][0]["files"] == [{"path": "src/app.py", "added": 4, "removed": 0}]
    api = show_json(built.repo, built.b)
    assert [h["section"] for h in api["hunks"]] == ["", "Endpoints"]
    assert [g["sha"] for g in api["generated"]] == [built.gb]
    assert api["generated"][0]["files"] == [{"path": "src/api.py", "added": 1, "removed": 0}]


def test_a_rebased_clone_finds_the_same_by_content_with_runs_from_the_notes(built: Built) -> None:
    d, gd, rev = (built.renamed[s] for s in (built.d, built.gd, built.rev))
    data = show_json(built.rebased, d)
    assert data["state"] == "reverted"
    [gen] = data["generated"]
    assert gen["sha"] == gd
    assert gen["reverted_by"] == rev  # the revert named the old sha; the run id names the same commit
    assert gen["run_record"]["source"] == "note"  # the clone has no run records, only refs/notes/mdspec
    assert gen["run_record"]["id"] == run_id(built.repo, built.gd)
    assert gen["run_record"]["check"] == "skipped"
    c = show_json(built.rebased, built.renamed[built.c])
    assert c["state"] == "implemented"
    assert [g["sha"] for g in c["generated"]] == [built.renamed[built.gc]]
    assert "(from the git note)" in built.rebased.mdspec("show", built.renamed[built.c]).stdout


def test_the_old_sha_of_a_rebased_spec_commit_is_not_on_the_branch(built: Built) -> None:
    data = show_json(built.rebased, built.c)  # the pre-rebase commit: still in the clone's objects
    assert data["on_branch"] is False
    assert data["state"] == "implemented"  # its content is implemented on the branch
    assert [g["sha"] for g in data["generated"]] == [built.renamed[built.gc]]


def test_a_spec_commit_with_no_run_yet_is_pending(mdrepo: Repo) -> None:
    spec = spec_commit(mdrepo, "# App\nSay hi.\n", env=QUIET)
    data = show_json(mdrepo, spec)
    assert data["state"] == "pending"
    assert data["generated"] == []
    assert "no generated commit implemented it" in mdrepo.mdspec("show", spec).stdout


def test_a_superseded_run_is_listed_with_its_kept_result(
    mdrepo: Repo,
    waiting: tuple[Path, Path],  # noqa: F811
) -> None:
    spec, amended, first, second = amend_during_its_run(mdrepo, waiting)
    assert first["status"] == "superseded"
    old = show_json(mdrepo, spec)
    assert old["on_branch"] is False
    assert old["state"] == "not on the branch"
    assert old["generated"] == []
    [run] = old["other_runs"]
    assert run["id"] == first["id"]
    assert run["status"] == "superseded"
    assert run["result"] == first["result"]
    text = mdrepo.mdspec("show", spec).stdout
    assert f"run {first['id']}: superseded" in text
    assert f"refs/mdspec/results/{first['id']}" in text
    new = show_json(mdrepo, amended)
    assert new["state"] == "implemented"
    assert [g["run"] for g in new["generated"]] == [second["id"]]


def test_not_a_spec_commit_is_a_one_line_error(built: Built) -> None:
    cases = {
        built.gc: "is a generated commit",
        built.hand: "changes no watched path",
        "no-such-rev": "no such commit here",
    }
    for rev, words in cases.items():
        proc = built.repo.mdspec("show", rev, check=False)
        assert proc.returncode == 1, rev
        assert words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_runs_are_the_runs_on_record(built: Built) -> None:
    # Every landed run of the history shows under the spec commit it implemented, and nowhere else.
    shown = {g["run"] for s in (built.a, built.b, built.c, built.d) for g in show_json(built.repo, s)["generated"]}
    assert shown == {r["id"] for r in runs(built.repo)}
    assert last_run(built.repo)["id"] in shown
