"""`mdspec revert`: one commit undoing a spec commit's generated commit(s); starts no run."""

from __future__ import annotations

from conftest import FOREGROUND, Repo

from mdspec.fast import trailers


def _runs(repo: Repo) -> int:
    d = repo.state / "runs"
    return len(list(d.iterdir())) if d.exists() else 0


def test_revert_by_spec_commit_makes_it_pending_again(mdrepo: Repo) -> None:
    spec = mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    generated = mdrepo.head()
    runs = _runs(mdrepo)
    out = mdrepo.mdspec("revert", spec[:10]).stdout
    assert "reverted" in out
    msg = mdrepo.message()
    assert trailers.values(msg, trailers.REVERTS) == [generated]
    assert not (mdrepo.top / "out.txt").exists()
    assert (mdrepo.top / "spec" / "app.md").exists()
    assert mdrepo.status() == ""
    assert _runs(mdrepo) == runs  # no run started
    status = mdrepo.mdspec("status").stdout
    assert "generated commit reverted" in status
    assert spec[:10] in status


def test_revert_with_spec_reverts_both_and_leaves_nothing_pending(mdrepo: Repo) -> None:
    spec = mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    generated = mdrepo.head()
    mdrepo.mdspec("revert", "--with-spec", spec)
    assert set(trailers.values(mdrepo.message(), trailers.REVERTS)) == {generated, spec}
    assert not (mdrepo.top / "out.txt").exists()
    assert not (mdrepo.top / "spec" / "app.md").exists()
    status = mdrepo.mdspec("status").stdout
    assert "pending: nothing" in status


def test_revert_by_run_id_and_refusal_keeps_user_edits(mdrepo: Repo) -> None:
    mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    run_id = trailers.values(mdrepo.message(), trailers.RUN)[0]
    head = mdrepo.head()
    (mdrepo.top / "out.txt").write_text("my own edit\n")
    proc = mdrepo.mdspec("revert", run_id, check=False)
    assert proc.returncode == 1
    assert "mdspec: error: revert not applied" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert mdrepo.head() == head
    assert (mdrepo.top / "out.txt").read_text() == "my own edit\n"
    (mdrepo.top / "out.txt").write_text("implemented\n")
    mdrepo.mdspec("revert", run_id[:12])
    assert mdrepo.head("HEAD~1") == head


def test_unknown_target_is_one_line(mdrepo: Repo) -> None:
    proc = mdrepo.mdspec("revert", "nonsense", check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "nonsense" in proc.stderr


def test_revert_waits_for_no_run(mdrepo: Repo) -> None:
    from mdspec.run.lock import worker_lock

    mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    head = mdrepo.head()
    with worker_lock(mdrepo.state) as got:
        assert got
        proc = mdrepo.mdspec("revert", check=False)
    assert proc.returncode == 1
    assert "a run is in progress" in proc.stderr
    assert mdrepo.head() == head
    mdrepo.mdspec("revert")
    assert mdrepo.head("HEAD~1") == head
