"""`mdspec init --ci github|gitlab`: the CI file that runs `mdspec ci` on pushes touching watched paths.

Rendered from templates/ci/: the watched globs, the mdspec version that wrote the file (CI installs that
version), and a job time limit covering the run's own limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mdspec import __version__, templates
from mdspec.commands.ci import lock_minutes
from mdspec.config import Config

KINDS = ("github", "gitlab")
GITHUB_FILE = ".github/workflows/mdspec.yml"
GITLAB_FILE = ".gitlab-ci.yml"
Printer = Callable[[str], None]


@dataclass(frozen=True)
class CiFile:
    path: str  # relative to the repository's top
    text: str


def _yaml_list(items: list[str], indent: int) -> str:
    # JSON strings are valid YAML double-quoted scalars: any glob character is safe.
    return "\n".join(" " * indent + "- " + json.dumps(i) for i in items)


def _gitlab_glob(glob: str) -> str:
    """GitLab's `changes:` matches files: a directory glob `spec/**` is written `spec/**/*`."""
    return glob + "/*" if glob.endswith("/**") else glob


def render(kind: str, cfg: Config, version: str = __version__) -> CiFile:
    minutes = str(math.ceil(lock_minutes(cfg)))
    if kind == "github":
        text = templates.render(
            templates.read("ci/github.yml"), version=version, timeout=minutes, paths=_yaml_list(list(cfg.watch), 6)
        )
        return CiFile(GITHUB_FILE, text)
    text = templates.render(
        templates.read("ci/gitlab.yml"),
        version=version,
        timeout=minutes,
        paths=_yaml_list([_gitlab_glob(g) for g in cfg.watch], 8),
    )
    return CiFile(GITLAB_FILE, text)


def write(top: Path, kind: str, cfg: Config, out: Printer) -> None:
    """Write the CI file where absent; an existing .gitlab-ci.yml is left alone and the job printed."""
    f = render(kind, cfg)
    path = top / f.path
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")
        if "mdspec ci" in text:
            out(f"  {f.path} already runs `mdspec ci`: left as it is")
            return
        if kind == "gitlab":
            out(f"  {f.path} exists and was not changed: add this job to it (top level, next to your other jobs):")
            for line in f.text.splitlines():
                out(f"    {line}")
            return
        out(
            f"  {f.path} exists and was not changed: remove it and run `mdspec init --ci {kind}` again to "
            "get mdspec's workflow"
        )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f.text, encoding="utf-8")
    out(f"  created {f.path}: it runs `mdspec ci` on pushes that change {', '.join(cfg.watch)}")
    if cfg.ci.mode != "ci":
        out(f'  set `[ci] mode = "ci"` in {cfg.config_name} and commit both, so commits wait for CI')
