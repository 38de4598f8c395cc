"""A repository with a history made by real runs, for the traceability commands' tests.

The agent is a small compiler: every line of prose under a `## ` heading of spec/NAME.md becomes one line
of src/NAME.py, in order. So each line of code answers to one line of spec, and a spec commit that changes
a line makes a generated commit that changes the matching line of code. Built once per test worker:

    A   spec/app.md: Greeting, Farewell           -> GA  writes src/app.py
    B   spec/api.md: Endpoints                    -> GB  writes src/api.py
    C   spec/app.md: the Farewell line changed    -> GC  changes that one line of src/app.py
    D   spec/app.md: an Errors section added      -> GD  adds two lines; REV = `git revert GD`
    H   src/app.py edited by hand (a line added)

`rebased` is a second clone (notes fetched, no run records) whose history from A on was rebased onto a
new commit: every sha differs, trailers still name the old ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo, agent_script, isolate, make_repo
from runhelpers import QUIET

COMPILER = """
import os, pathlib
for spec in sorted(pathlib.Path("spec").glob("*.md")):
    if spec.name == "README.md":
        continue
    out, section = [], ""
    for line in spec.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            out.append(f"say({section!r}, {line.strip()!r})")
    pathlib.Path("src").mkdir(exist_ok=True)
    pathlib.Path("src", spec.stem + ".py").write_text("\\n".join(out) + "\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Compile the spec\\n\\nA line of code a line.\\n")
"""

APP_A = "# App\n\nA greeter.\n\n## Greeting\n\nSay hello.\nUse the name.\n\n## Farewell\n\nSay goodbye.\n"
API_B = "# API\n\n## Endpoints\n\nGET /hello answers hello.\n"
APP_C = APP_A.replace("Say goodbye.", "Say goodbye politely.")
APP_D = APP_C + "\n## Errors\n\nLog every error.\nExit with status 2.\n"
HAND_LINE = "say('Greeting', 'tuned by hand')"


@dataclass(frozen=True)
class Built:
    repo: Repo
    rebased: Repo
    setup: str
    a: str
    ga: str
    b: str
    gb: str
    c: str
    gc: str
    d: str
    gd: str
    rev: str
    hand: str
    renamed: dict[str, str]  # sha in `repo` -> the same commit's sha in `rebased`


def _spec(repo: Repo, path: str, text: str) -> tuple[str, str]:
    """Commit a spec change with the run in the hook (foreground); the spec sha and the generated sha."""
    sha = repo.commit(f"spec: {path} {len(text)}", {path: text}, env=FOREGROUND)
    generated = repo.head()
    assert generated != sha, repo.last_output
    return sha, generated


def build(root: Path) -> Built:
    repo = make_repo(root / "repo")
    repo.mdspec("init", "--git-hook")
    cmd = agent_script(root, COMPILER, "compiler.py")
    repo.configure(f'[agent]\nbackend = "command"\ncommand = "{cmd}"\n')
    setup = repo.commit("set up mdspec", env=QUIET)
    a, ga = _spec(repo, "spec/app.md", APP_A)
    b, gb = _spec(repo, "spec/api.md", API_B)
    c, gc = _spec(repo, "spec/app.md", APP_C)
    d, gd = _spec(repo, "spec/app.md", APP_D)
    repo.git("revert", "--no-edit", gd, env=QUIET)
    rev = repo.head()
    app = (repo.top / "src/app.py").read_text()
    hand = repo.commit("tune the greeting by hand", {"src/app.py": app + HAND_LINE + "\n"}, env=QUIET)

    rebased = Repo(root / "rebased")
    repo.git("clone", "-q", str(repo.top), str(rebased.top))
    rebased.git("config", "user.name", "Grace Hopper")
    rebased.git("config", "user.email", "grace@example.com")
    rebased.git("fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
    rebased.git("checkout", "-q", "-b", "base", setup)
    rebased.commit("an unrelated change", {"NOTES.txt": "unrelated\n"}, env=QUIET)
    rebased.git("rebase", "-q", "--onto", "base", setup, "main", env=QUIET)
    old = repo.git("log", "--reverse", "--format=%H", f"{setup}..main").split()
    new = rebased.git("log", "--reverse", "--format=%H", "base..main").split()
    assert len(old) == len(new)
    return Built(repo, rebased, setup, a, ga, b, gb, c, gc, d, gd, rev, hand, dict(zip(old, new, strict=True)))


@pytest.fixture(scope="session", name="built")
def built_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The history above, built once per test worker; tests read it and must not change it."""
    root = tmp_path_factory.mktemp("trace")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        made = build(root)
        yield made
    shutil.rmtree(root, ignore_errors=True)
