"""`mdspec init --ci github|gitlab`: the CI files, checked by real validators.

check-jsonschema (a test extra) validates both files against its built-in GitHub workflow and GitLab CI
schemas, which ship inside the package: no network. actionlint checks the workflow too where it is
installed (it is not a test extra: its PyPI package downloads the binary when it is built).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Repo

from mdspec import __version__
from mdspec.commands import ciconfig
from mdspec.config import Config

SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def validate(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMAS[kind], str(path)],
        capture_output=True,
        text=True,
    )


def rendered(tmp_path: Path, kind: str, cfg: Config | None = None) -> tuple[Path, dict[Any, Any]]:
    f = ciconfig.render(kind, cfg or Config(path=None))
    path = tmp_path / f"{kind}.yml"
    path.write_text(f.text, encoding="utf-8")
    return path, yaml.safe_load(f.text)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_ci_files_pass_their_schema(tmp_path: Path, kind: str) -> None:
    path, _ = rendered(tmp_path, kind, Config(path=None, watch=("spec/**", "TASK.md", "docs/*.md")))
    proc = validate(kind, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("github", "cancel-in-progress: false", "cancel-in-progress: maybe"),
        ("github", "runs-on:", "runs_on:"),
        ("gitlab", "resource_group: mdspec-$CI_COMMIT_REF_SLUG", "resource_group: [1]"),
        ("gitlab", "  script:", "  scripts:"),
    ],
)
def test_the_validators_catch_a_broken_file(tmp_path: Path, kind: str, old: str, new: str) -> None:
    path, _ = rendered(tmp_path, kind)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    assert validate(kind, path).returncode != 0


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed")
def test_actionlint_accepts_the_workflow(tmp_path: Path) -> None:
    path, _ = rendered(tmp_path, "github")
    proc = subprocess.run(["actionlint", "-shellcheck=", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_github_workflow_says_what_the_team_needs(tmp_path: Path) -> None:
    _, data = rendered(tmp_path, "github", Config(path=None, watch=("spec/**", "TASK.md")))
    on = data[True] if True in data else data["on"]  # YAML 1.1 reads the key `on` as a boolean
    assert on["push"]["paths"] == ["spec/**", "TASK.md"]
    assert data["concurrency"]["cancel-in-progress"] is False
    assert "github.ref" in data["concurrency"]["group"]
    steps = data["jobs"]["compile"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"]["fetch-depth"] == 0
    script = "\n".join(str(s.get("run", "")) for s in steps)
    assert f'"mdspec=={__version__}"' in script
    assert "mdspec ci --push" in script
    env = steps[-1]["env"]
    assert env["ANTHROPIC_API_KEY"] == "${{ secrets.ANTHROPIC_API_KEY }}"
    assert env["MDSPEC_SANDBOX"] == "bwrap"
    assert data["permissions"]["contents"] == "write"


def test_gitlab_job_says_what_the_team_needs(tmp_path: Path) -> None:
    _, data = rendered(tmp_path, "gitlab", Config(path=None, watch=("spec/**", "TASK.md")))
    job = data["mdspec"]
    assert job["rules"][0]["changes"] == ["spec/**/*", "TASK.md"]
    assert "$CI_COMMIT_REF_SLUG" in job["resource_group"]
    assert job["variables"]["GIT_DEPTH"] == "0"
    assert job["variables"]["MDSPEC_SANDBOX"] == "bwrap"
    script = "\n".join(job["script"])
    assert f'"mdspec=={__version__}"' in script
    assert "mdspec ci --push" in script
    assert "ANTHROPIC_API_KEY" not in script  # a masked CI/CD variable: never written into the file


def test_init_ci_github_writes_the_workflow_once(repo: Repo) -> None:
    out = repo.mdspec("init", "--git-hook", "--ci", "github").stdout
    path = repo.top / ciconfig.GITHUB_FILE
    assert f"created {ciconfig.GITHUB_FILE}" in out
    assert validate("github", path).returncode == 0
    path.write_text(path.read_text() + "# ours\n")
    again = repo.mdspec("init", "--git-hook", "--ci", "github").stdout
    assert "left as it is" in again
    assert path.read_text().endswith("# ours\n")
    assert repo.log() == ["initial"]  # init commits nothing


def test_init_ci_gitlab_prints_the_job_when_the_file_exists(repo: Repo) -> None:
    existing = "stages: [test]\n\nunit:\n  script: [make test]\n"
    (repo.top / ".gitlab-ci.yml").write_text(existing)
    out = repo.mdspec("init", "--git-hook", "--ci", "gitlab").stdout
    assert (repo.top / ".gitlab-ci.yml").read_text() == existing
    assert "add this job to it" in out
    job = "\n".join(ln[4:] for ln in out.splitlines() if ln.startswith("    "))
    assert "mdspec ci --push" in job
    assert yaml.safe_load(job)["mdspec"]["resource_group"]


def test_init_ci_gitlab_writes_the_file_when_absent(repo: Repo) -> None:
    repo.mdspec("init", "--git-hook", "--ci", "gitlab")
    path = repo.top / ".gitlab-ci.yml"
    assert validate("gitlab", path).returncode == 0
    assert "mdspec ci --push" in path.read_text()


def test_init_ci_rejects_an_unknown_forge(repo: Repo) -> None:
    proc = repo.mdspec("init", "--ci", "jenkins", check=False)
    assert proc.returncode == 2
    assert "jenkins" in proc.stderr
