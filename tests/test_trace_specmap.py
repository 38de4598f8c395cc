"""`mdspec spec-map` on a history made by real runs (tests/tracerepo.py): text, JSON, the inverse for a code
file, the rebased clone, errors, progress, and the HTML page rendered in a real headless Chromium.

Every expected count is read from git (the numstat of the commits the history was built from), never
written down here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo, make_repo
from runhelpers import QUIET
from tracerepo import Built, built_fixture  # noqa: F401

ABOVE = "(above the first ## heading)"


def numstat(repo: Repo, sha: str, path: str) -> tuple[int, int]:
    """Lines a commit added and removed in one file, as git counts them."""
    out = repo.git("show", "--numstat", "--format=", sha, "--", path).split()
    return (int(out[0]), int(out[1])) if out else (0, 0)


def run_id(repo: Repo, sha: str) -> str:
    return repo.git("log", "-1", "--format=%(trailers:key=Mdspec-Run,valueonly)", sha).strip()


def spec_map_json(repo: Repo, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    proc = spec_map(repo, "--json", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def spec_map(repo: Repo, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "mdspec", "spec-map", *args],
        cwd=cwd or repo.top,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def section(data: dict[str, Any], spec: str, name: str) -> dict[str, Any]:
    f = next(f for f in data["spec_files"] if f["path"] == spec)
    found: dict[str, Any] = next(s for s in f["sections"] if s["section"] == name)
    return found


def code(entries: list[dict[str, Any]], path: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in entries if c["path"] == path)
    return found


def lines(commits: int, added: int, removed: int) -> dict[str, int]:
    return {"commits": commits, "added": added, "removed": removed}


def expected_app(b: Built, repo: Repo | None = None) -> dict[str, dict[str, Any]]:
    """spec/app.md's sections -> what src/app.py should show under them, from the commits' numstat."""
    repo = repo or b.repo
    sha = (lambda s: s) if repo is b.repo else b.renamed.__getitem__
    ga, gc, gd = (numstat(repo, sha(g), "src/app.py") for g in (b.ga, b.gc, b.gd))
    empty = lines(0, 0, 0)
    return {
        # A made the whole file: its title and intro, Greeting and Farewell -> GA.
        "": {"produced": lines(1, *ga), "reverted": empty},
        "Greeting": {"produced": lines(1, *ga), "reverted": empty},
        # C changed Farewell's line -> GC; A made it -> GA.
        "Farewell": {"produced": lines(2, ga[0] + gc[0], ga[1] + gc[1]), "reverted": empty},
        # D added Errors -> GD, reverted since.
        "Errors": {"produced": empty, "reverted": lines(1, *gd)},
    }


def check_map(b: Built, data: dict[str, Any], repo: Repo) -> None:
    want = expected_app(b, repo)
    app = next(f for f in data["spec_files"] if f["path"] == "spec/app.md")
    assert [s["section"] for s in app["sections"]] == ["", "Greeting", "Farewell", "Errors"]
    for name, counts in want.items():
        got = section(data, "spec/app.md", name)
        assert [c["path"] for c in got["code"]] == ["src/app.py"], got
        assert {k: got["code"][0][k] for k in ("produced", "reverted")} == counts, name
    assert section(data, "spec/app.md", "Farewell")["spec_commits"] == 2  # A and C
    assert section(data, "spec/app.md", "Errors")["present"] is True  # only the code was reverted: D stands
    gb = numstat(repo, b.gb if repo is b.repo else b.renamed[b.gb], "src/api.py")
    endpoints = section(data, "spec/api.md", "Endpoints")
    assert endpoints["code"] == [{"path": "src/api.py", "produced": lines(1, *gb), "reverted": lines(0, 0, 0)}]
    # The whole file counts each generated commit once, reverted apart; the hand commit H not at all.
    whole = code(app["code"], "src/app.py")
    ga, gc, gd = (want["Greeting"]["produced"], want["Farewell"]["produced"], want["Errors"]["reverted"])
    assert whole["produced"] == lines(2, gc["added"], gc["removed"])
    assert whole["reverted"] == gd
    assert ga["commits"] == 1
    assert app["spec_commits"] == 3
    assert data["generated_commits"] == 4
    assert data["reverted_commits"] == 1


def test_json_map_matches_the_history(built: Built) -> None:
    data = spec_map_json(built.repo)
    assert data["tip"] == built.repo.head()
    check_map(built, data, built.repo)
    # The runs behind each spec file: their ids from the generated commits' trailers, GD's reverted.
    app = next(f for f in data["spec_files"] if f["path"] == "spec/app.md")
    runs = {r["run"]: (r["generated"], r["state"]) for r in app["runs"]}
    assert runs == {
        run_id(built.repo, built.ga): (built.ga, "landed"),
        run_id(built.repo, built.gc): (built.gc, "landed"),
        run_id(built.repo, built.gd): (built.gd, "reverted"),
    }
    api = next(f for f in data["spec_files"] if f["path"] == "spec/api.md")
    assert [(r["run"], r["generated"]) for r in api["runs"]] == [(run_id(built.repo, built.gb), built.gb)]
    # The command backend has no price: unknown, never $0.
    assert app["cost_usd"] is None
    assert app["unknown_cost_runs"] == 3


def test_rebased_clone_gives_the_same_map(built: Built) -> None:
    here, there = spec_map_json(built.repo), spec_map_json(built.rebased)
    check_map(built, there, built.rebased)
    for a, b in zip(here["spec_files"], there["spec_files"], strict=True):
        assert (a["path"], a["sections"], a["code"]) == (b["path"], b["sections"], b["code"])
        # The runs come from the notes there (no run records): same runs, same states, renamed commits.
        assert [(r["run"], built.renamed.get(r["generated"]), r["state"]) for r in a["runs"]] == [
            (r["run"], r["generated"], r["state"]) for r in b["runs"]
        ]


def parse_text(out: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(spec file, section) -> code file -> the row's other cells, from the text map."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    spec = sect = ""
    for line in out.splitlines()[1:]:
        if not line.strip():
            continue
        if not line.startswith(" "):
            spec = line.split("  ")[0]
        elif line.startswith("      "):
            cells = line.split()
            found.setdefault((spec, sect), {})[cells[0]] = cells[1:]
        else:
            head = line.strip().split("  (")[0]
            sect = "" if head == ABOVE else head.removeprefix("## ")
    return found


def test_text_map_matches_the_history(built: Built) -> None:
    out = built.repo.mdspec("spec-map").stdout
    first = out.splitlines()[0]
    assert first.startswith("mdspec spec-map: ")
    assert built.repo.head()[:10] in first
    assert "1 reverted" in first
    rows = parse_text(out)
    for name, counts in expected_app(built).items():
        p, r = counts["produced"], counts["reverted"]
        want = [] if not p["commits"] else [str(p["commits"]), "commit" + "s" * (p["commits"] != 1)]
        want += [f"+{p['added']}", f"-{p['removed']}"] if p["commits"] else []
        if r["commits"]:
            want += ["reverted:", "1", "commit", f"+{r['added']}", f"-{r['removed']}"]
        assert rows[("spec/app.md", name)] == {"src/app.py": want}, name
    added, _ = numstat(built.repo, built.gb, "src/api.py")
    assert rows[("spec/api.md", "Endpoints")] == {"src/api.py": ["1", "commit", f"+{added}", "-0"]}
    # The count columns line up: every row's "+" column starts at the same place.
    plus = {line.index(" +") for line in out.splitlines() if line.startswith("      src/") and "reverted" not in line}
    assert len(plus) == 1, out


def test_inverse_for_a_code_file(built: Built) -> None:
    data = spec_map_json(built.repo, "src/app.py")
    assert data["spec_files"] == []
    (entry,) = data["code_files"]
    assert entry["path"] == "src/app.py"
    want = expected_app(built)
    got = {
        (s["spec_file"], s["section"]): {"produced": s["produced"], "reverted": s["reverted"]} for s in entry["specs"]
    }
    assert got == {("spec/app.md", k): v for k, v in want.items()}
    # The hand commit H and the revert of GD are the commits not made by a run.
    hand, rev = numstat(built.repo, built.hand, "src/app.py"), numstat(built.repo, built.rev, "src/app.py")
    assert entry["not_generated"] == lines(2, hand[0] + rev[0], hand[1] + rev[1])
    assert entry["produced"]["commits"] == 2  # GA and GC: neither H nor the reverted GD

    text = built.repo.mdspec("spec-map", "src/app.py").stdout
    head = next(line for line in text.splitlines() if line.startswith("src/app.py"))
    assert "2 generated commits" in head
    assert f"not from a run: 2 commits +{hand[0] + rev[0]}" in head
    assert re.search(r"spec/app.md  ## Farewell +2 commits", text), text
    assert re.search(r"spec/app.md  ## Errors .*reverted: 1 commit", text), text


def test_paths_are_relative_to_the_current_directory(built: Built) -> None:
    from_src = spec_map_json(built.repo, "app.py", cwd=built.repo.top / "src")
    assert [c["path"] for c in from_src["code_files"]] == ["src/app.py"]
    spec = spec_map_json(built.repo, "api.md", cwd=built.repo.top / "spec")
    assert [f["path"] for f in spec["spec_files"]] == ["spec/api.md"]
    assert spec["code_files"] == []
    # A directory: every code file under it.
    src = spec_map_json(built.repo, "src")
    assert [c["path"] for c in src["code_files"]] == ["src/api.py", "src/app.py"]
    assert code(src["code_files"], "src/api.py")["specs"][-1]["section"] == "Endpoints"


def test_a_file_no_run_changed_has_no_spec_behind_it(built: Built) -> None:
    proc = built.repo.mdspec("spec-map", "README.md")
    assert "README.md  (0 generated commits +0 -0; not from a run: 1 commit +1 -0)" in proc.stdout
    assert "no spec behind it" in proc.stdout


def test_a_directory_with_nothing_mapped_says_so(built: Built) -> None:
    assert (built.repo.top / "notes").is_dir()
    out = built.repo.mdspec("spec-map", "notes").stdout
    assert out.splitlines()[2:] == ["notes/: no spec file in it and no code file a run changed"], out


def one_line_error(proc: Any, *words: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("mdspec: error: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_errors(built: Built, repo: Repo, tmp_path: Path) -> None:
    one_line_error(spec_map(built.repo, "no/such.py"), "no/such.py: not in HEAD's tree", "git ls-files")
    one_line_error(spec_map(built.repo, "../elsewhere"), "../elsewhere: outside the repository")
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    one_line_error(spec_map(built.repo, cwd=outside), "not inside a git repository")
    one_line_error(spec_map(repo), "no spec commits in the history of HEAD", "spec/**")
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    subprocess.run(["git", "init", "-q", str(unborn)], check=True)
    one_line_error(spec_map(Repo(unborn)), "HEAD has no commits yet")
    one_line_error(spec_map(built.repo, "--html", str(tmp_path / "missing" / "map.html")), "cannot write the page")


def test_progress_goes_to_stderr_only(built: Built) -> None:
    quiet = spec_map(built.repo)
    shown = spec_map(built.repo, env={"MDSPEC_PROGRESS_AFTER": "0"})
    assert shown.returncode == 0
    assert shown.stdout == quiet.stdout
    assert shown.stderr.startswith("mdspec spec-map: reading the history…\n"), shown.stderr
    assert all(line.startswith("mdspec spec-map: ") for line in shown.stderr.splitlines())


# --- the HTML page, in a real browser -----------------------------------------------------------------------

INSTALL = "tests/tools/install-chromium.sh"


@pytest.fixture
def chromium() -> str:
    """Chromium's path; a skip when it is not installed, a failure under CI (whose set-up installs it)."""
    found = shutil.which("chromium")
    if found is None:
        problem = f"Chromium is not installed here: run {INSTALL} as root (Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return found


def render(browser: str, page: Path, tmp_path: Path) -> str:
    """The page's DOM after Chromium loaded it (scripts, had there been any, run)."""
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<body" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


class Page(HTMLParser):
    """What a reader sees, in order: headings, paragraphs and table rows as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, list[str]]] = []
        self.tags: list[str] = []
        self.refs: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3", "p"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.items.append(("tr", self._row))
            self._row = None
        elif tag in ("h1", "h2", "h3", "p") and self._text is not None:
            self.items.append((tag, [" ".join("".join(self._text).split())]))
            self._text = None

    def handle_data(self, data: str) -> None:
        for buf in (self._cell, self._text):
            if buf is not None:
                buf.append(data)


def shown(dom: str) -> Page:
    p = Page()
    p.feed(dom)
    return p


def spec_rows(page: Page, spec: str) -> dict[str, dict[str, list[str]]]:
    """section -> code file -> its row's cells, for one spec file's table."""
    out: dict[str, dict[str, list[str]]] = {}
    current = sect = None
    for kind, cells in page.items:
        if kind == "h2":
            current = cells[0]
        elif kind == "tr" and current == spec and len(cells) == 1 and cells[0].startswith(("## ", ABOVE)):
            head = cells[0].split(" spec commit")[0].rsplit(" ", 1)[0]
            sect = "" if head.startswith(ABOVE) else head.removeprefix("## ")
        elif kind == "tr" and current == spec and sect is not None and len(cells) == 6:
            out.setdefault(sect, {})[cells[0]] = cells[1:]
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def no_external_refs(text: str, page: Page) -> None:
    assert not [r for r in page.refs if re.match(r"\s*(https?:|//)", r, re.I)], page.refs
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.I)
    assert "@import" not in text
    assert "url(" not in text


def test_html_page_in_chromium(built: Built, chromium: str, tmp_path: Path) -> None:
    target = tmp_path / "map.html"
    proc = built.repo.mdspec("spec-map", "--html", str(target))
    assert proc.stdout.startswith(f"mdspec spec-map: wrote {target}"), proc.stdout
    text = target.read_text()
    no_external_refs(text, shown(text))
    page = shown(render(chromium, target, tmp_path))
    assert [c[0] for k, c in page.items if k == "h2"] == [
        "spec/README.md",
        "spec/api.md",
        "spec/app.md",
        "Code files and the specs behind them",
    ]
    assert [c[0] for k, c in page.items if k == "h3" and c[0].startswith("src/")] == ["src/api.py", "src/app.py"]
    rows = spec_rows(page, "spec/app.md")
    for name, counts in expected_app(built).items():
        p, r = counts["produced"], counts["reverted"]
        cells = rows[name]["src/app.py"]
        assert cells[:3] == [str(p["commits"]), f"+{p['added']}", f"-{p['removed']}"], (name, cells)
        assert cells[4] == (f"reverted: 1 commit +{r['added']} -{r['removed']}" if r["commits"] else "")
    added, _ = numstat(built.repo, built.gb, "src/api.py")
    assert spec_rows(page, "spec/api.md")["Endpoints"]["src/api.py"][:3] == ["1", f"+{added}", "-0"]
    # The run timeline: every run with its generated commit, its cost (unknown: no price) and its state.
    timeline = {c[1]: c for k, c in page.items if k == "tr" and len(c) == 9 and c[0] != "date (UTC)"}
    for g, state in ((built.ga, "landed"), (built.gb, "landed"), (built.gc, "landed"), (built.gd, "reverted")):
        row = timeline[run_id(built.repo, g)]
        assert (row[2][:10], row[7], row[8]) == (g[:10], "unknown", state), row
    shot = tmp_path / "map.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,700",
            target.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert png_size(shot) == (1000, 700)


HOSTILE_SUBJECT = "mdspec: <script>document.title='owned'</script> & <b>bold</b>"
HOSTILE_RUN = "20260101-000000-<u>run</u>"
HOSTILE_HEADING = "<img src=x onerror=alert(1)> Errors & <i>co</i>"


def test_html_page_escapes_what_the_repository_says(built: Built, chromium: str, tmp_path: Path) -> None:
    clone = Repo(tmp_path / "clone")
    built.repo.git("clone", "-q", str(built.repo.top), str(clone.top))
    clone.git("config", "user.name", "Eve")
    clone.git("config", "user.email", "eve@example.com")
    text = (clone.top / "spec/app.md").read_text() + f"\n## {HOSTILE_HEADING}\n\nBe careful.\n"
    spec = clone.commit("spec: a heading of markup", {"spec/app.md": text}, env=QUIET)
    clone.commit(
        f"{HOSTILE_SUBJECT}\n\nMdspec-Implements: {spec}\nMdspec-Run: {HOSTILE_RUN}\nMdspec-Check: skipped",
        {"src/<odd>.py": "say('careful')\n"},
        env=QUIET,
    )
    target = tmp_path / "page.html"
    clone.mdspec("spec-map", "--html", str(target), "spec/app.md")
    source = target.read_text()
    assert "<script" not in source
    assert "<img" not in source
    assert "<u>" not in source
    dom = render(chromium, target, tmp_path)
    page = shown(dom)
    assert not {"script", "img", "u", "b", "i"} & set(page.tags), set(page.tags)
    assert (("h1", ["spec map of clone: spec/app.md"])) in page.items  # the title no script changed
    rows = spec_rows(page, "spec/app.md")
    assert list(rows[HOSTILE_HEADING]) == ["src/<odd>.py"]
    runs = [c for k, c in page.items if k == "tr" and len(c) == 9 and c[1] == HOSTILE_RUN]
    assert len(runs) == 1, page.items
    assert runs[0][2].endswith(HOSTILE_SUBJECT), runs
    assert runs[0][7] == "unknown", runs


def test_the_install_script_is_quiet_when_chromium_is_there(chromium: str) -> None:
    proc = subprocess.run(["bash", INSTALL], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_a_repository_with_no_mdspec_config_uses_the_default_watched_paths(tmp_path: Path) -> None:
    plain = make_repo(tmp_path / "plain")
    spec = plain.commit("a spec", {"spec/x.md": "# X\n\n## One\n\nDo one thing.\n"})
    plain.commit(
        f"mdspec: do it\n\nMdspec-Implements: {spec}\nMdspec-Run: 20260101-000000-abc\nMdspec-Check: skipped",
        {"x.py": "one()\n", "notes/x.md": "what I did\n"},
    )
    data = spec_map_json(plain)
    assert section(data, "spec/x.md", "One")["code"] == [
        {"path": "x.py", "produced": lines(1, 1, 0), "reverted": lines(0, 0, 0)}
    ]  # the agent's notes are not code
