"""The command line. Commands only parse arguments and call plain functions returning an exit code."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click

from mdspec import __version__
from mdspec.errors import run_guarded


def _out(line: str) -> None:
    click.echo(line)


def _call(fn: object, *args: object) -> None:
    code = run_guarded(lambda: fn(*args))  # type: ignore[operator]
    sys.exit(code)


def _call_and_go(fn: object, *args: object) -> None:
    """For the read-only trace commands: what they made is left out of the interpreter's last garbage
    collections (`gc.freeze`), which cost ~25 ms once pygit2 is loaded, a seventh of `mdspec blame`.
    Exit handlers still run (a coverage measurement, a temp file's removal)."""
    code = run_guarded(lambda: fn(*args))  # type: ignore[operator]
    gc.freeze()
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mdspec")
def cli() -> None:
    """mdspec: programming in markdown.

    Write the application as a spec under spec/ (or a TASK.md for a bug or a one-off job) and commit it.
    A post-commit hook starts an agent that implements the change in an isolated worktree; mdspec commits
    the result as a follow-up commit on your branch. Undo one with `git revert`.

    \b
    Start:   mdspec init            (in your repository)
    Watch:   mdspec status, mdspec log -f, mdspec cost
    By hand: mdspec run, mdspec apply, mdspec cancel, mdspec revert
    Trace:   mdspec blame, mdspec show, mdspec spec-map
    """


@cli.command()
@click.option("--git-hook", is_flag=True, help="Install a plain git post-commit hook instead of using pre-commit.")
@click.option("--pre-commit-repo", "remote", metavar="URL", help="Pin mdspec as a remote pre-commit hook repository.")
@click.option("--rev", metavar="REV", help="The tag or commit of --pre-commit-repo to pin.")
@click.option(
    "--ci",
    "ci",
    type=click.Choice(["github", "gitlab"]),
    help="Also write the CI file that runs `mdspec ci` on pushes (GitHub Actions or GitLab CI).",
)
def init(git_hook: bool, remote: str | None, rev: str | None, ci: str | None) -> None:
    """Set up mdspec in the current repository.

    Creates (only where absent) spec/README.md, notes/README.md, AGENTS.md, CLAUDE.md and .mdspec.toml,
    adds the mdspec hook to .pre-commit-config.yaml and runs `pre-commit install --hook-type post-commit`.
    Commits nothing. Safe to run again.
    """
    from mdspec.commands import init as install

    _call(install.init, Path.cwd(), git_hook, remote, rev, _out, ci)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Show the running run, queued and pending spec commits, and the last runs."""
    from mdspec.commands import status as status_mod

    _call(status_mod.status, Path.cwd(), as_json, _out)


@cli.command()
@click.argument("run", required=False)
@click.option("-f", "--follow", is_flag=True, help="Follow the live run until it ends.")
def log(run: str | None, follow: bool) -> None:
    """Print a run's record and its transcript or output (default: the newest run).

    RUN is a run id or a unique prefix of one, as `mdspec status` shows them.
    """
    from mdspec.commands import log as log_mod

    _call(log_mod.log, Path.cwd(), run, follow, _out)


@cli.command()
@click.option(
    "--since", metavar="DATE", help="Only runs started on or after DATE: YYYY-MM-DD, or 7d for the last 7 days."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cost(since: str | None, as_json: bool) -> None:
    """What the agent runs cost: runs, tokens and US dollars per day, per spec file, and in total.

    Tokens are input, output, cache read and cache write. Read from this clone's run records and from
    the git notes on generated commits (refs/notes/mdspec), so a fresh clone shows the runs once its
    notes are fetched: git fetch origin 'refs/notes/mdspec:refs/notes/mdspec'. A run whose model has
    no price is counted as of unknown cost, never as $0: set [agent.prices."MODEL"] in .mdspec.toml.
    A run that changed several spec files counts under each of them.
    """
    from mdspec.commands import cost as cost_mod

    _call(cost_mod.report, Path.cwd(), since, as_json, _out)


@cli.command()
@click.argument("revs", nargs=-1)
@click.option("--foreground", is_flag=True, help="Run here and wait, printing progress, instead of in the background.")
def run(revs: tuple[str, ...], foreground: bool) -> None:
    """Start a run by hand.

    Without REVs it implements every pending spec commit on the current branch, including those whose
    generated commit was reverted. With REVs, exactly those spec commits.
    """
    from mdspec.commands import run as run_mod

    if foreground or os.environ.get("MDSPEC_FOREGROUND"):
        _call(run_mod.run_now, Path.cwd(), revs, _out)
    _call(run_mod.start_background, Path.cwd(), revs, _out)


@cli.command()
@click.argument("run", required=False)
def apply(run: str | None) -> None:
    """Land a held result (default: the newest), with the same safety as a run."""
    from mdspec.commands import apply as apply_mod

    _call(apply_mod.apply, Path.cwd(), run, _out)


@cli.command()
@click.option(
    "--push", "deliver", flag_value="push", default=True, help="Push the generated commit to the branch (default)."
)
@click.option(
    "--pull-request",
    "deliver",
    flag_value="pull-request",
    help="Push it to mdspec/<spec sha> and open a pull/merge request instead.",
)
@click.option("--remote", metavar="NAME", help="The remote to fetch from and push to (default: [ci] remote, origin).")
@click.option("--branch", metavar="NAME", help="The branch to compile (default: the CI's branch, else HEAD's).")
@click.option(
    "--forge",
    type=click.Choice(["auto", "github", "gitlab"]),
    default="auto",
    show_default=True,
    help="How a pull/merge request is opened.",
)
def ci(deliver: str, remote: str | None, branch: str | None, forge: str) -> None:
    """Compile the branch's pending spec commits in a CI job, and push the result.

    Fetches the branch, runs once for every spec commit on it that no generated commit implements, then
    pushes the generated commit (rebased and pushed again if the branch moved; on a conflict it goes to
    branch mdspec/results/<run-id>) or opens a pull/merge request. Never force-pushes. Exit status: 0
    landed or nothing pending, 1 held or failed, 2 a config or usage error.
    """
    from mdspec.commands import ci as ci_mod

    _call(ci_mod.ci, Path.cwd(), deliver, remote, branch, forge, _out)


@cli.command()
def cancel() -> None:
    """Stop the running run and everything it started; land nothing.

    Queued spec commits stay queued and the cancelled run's spec commits stay pending: `mdspec run`
    starts them again, from a clean worktree.
    """
    from mdspec.commands import cancel as cancel_mod

    _call(cancel_mod.cancel, Path.cwd(), _out)


@cli.command()
@click.argument("target", required=False, metavar="[SPEC-REV | RUN]")
@click.option("--with-spec", is_flag=True, help="Revert the spec commit(s) too, in the same commit.")
def revert(target: str | None, with_spec: bool) -> None:
    """Revert the generated commit(s) of a spec commit or run, as one commit that starts no run.

    TARGET is a spec commit (every generated commit implementing it is reverted), a generated commit,
    or a run id (prefix). Default: the newest generated commit on the branch. Without --with-spec the
    spec commit shows as pending again and `mdspec run` implements it anew; with it, spec and code go
    back together. A plain `git revert` of a generated commit works too.
    """
    from mdspec.commands import revert as revert_mod

    _call(revert_mod.revert, Path.cwd(), target, with_spec, _out)


@cli.command()
def doctor() -> None:
    """Check the set-up: config, hook, API key or agent CLI, sandbox, worktree, state dir."""
    from mdspec.commands import doctor as doctor_mod

    _call(doctor_mod.doctor, Path.cwd(), _out)


@cli.command("validate-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def validate_config(file: Path | None) -> None:
    """Check .mdspec.toml (or [tool.mdspec] in pyproject.toml, or FILE)."""
    from mdspec.commands import validate_config as validate_mod

    _call(validate_mod.validate_config, Path.cwd(), file, _out)


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the demo repository (default: a new temp dir).",
)
@click.option(
    "--preset",
    type=click.Choice(["claude-code", "codex"]),
    help="Use an installed agent CLI instead of the built-in agent (which needs ANTHROPIC_API_KEY).",
)
@click.option("--timeout", "timeout_min", type=float, default=15.0, show_default=True, help="Minutes to wait.")
def demo(directory: Path | None, preset: str | None, timeout_min: float) -> None:
    """Try mdspec on a throwaway repository.

    Creates a repository with a small spec (a word-frequency command), installs the hook, commits the
    spec and follows the agent's run to its generated commit, printing turns, tool calls, tokens and cost.
    """
    from mdspec.commands import demo as demo_mod

    _call(demo_mod.demo, directory, preset, timeout_min, _out)


@cli.command()
@click.argument("target", metavar="FILE[:LINE[-LINE]]")
@click.option("--rev", metavar="REV", help="Blame the file as it is in REV (default: as it is in the checkout).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: line groups, their commits, the spec hunks.")
def blame(target: str, rev: str | None, as_json: bool) -> None:
    """Which spec words each line of code answers to.

    For each line (or the range LINE-LINE), the commit that last changed it. For a generated commit: its
    run, the spec commit(s) it implements, and their hunks (the markdown lines added or removed, shortest
    first, with the `## ` section they sit in). Lines written by hand say so, with their commit.

    Works on any clone: it reads git blame and the commits' trailers. A spec commit that a rebase or
    cherry-pick gave a new sha is found by its content.

    \b
    mdspec blame src/app.py
    mdspec blame src/app.py:40-60
    mdspec blame --json src/app.py:12
    """
    from mdspec.commands import blame as blame_mod

    _call_and_go(blame_mod.blame, Path.cwd(), target, rev, as_json, _out)


@cli.command()
@click.argument("rev", metavar="SPEC-REV")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the change, its generated commits and runs.")
def show(rev: str, as_json: bool) -> None:
    """What a spec commit produced.

    Prints the spec change (the diff of watched paths), every generated commit that implemented it,
    including reverted ones, with the files and lines each changed and its run (turns, tokens, cost,
    check), the runs that landed nothing (superseded, held, failed), and whether it is implemented now.

    Works on any clone: the history is read from the commits' trailers, runs from the run records or,
    where there are none, from the git notes (refs/notes/mdspec).

    \b
    mdspec show HEAD~1
    mdspec show 3f2a9c1 --json
    """
    from mdspec.commands import show as show_mod

    _call_and_go(show_mod.show, Path.cwd(), rev, as_json, _out)


@cli.command("spec-map")
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one self-contained HTML page (no network) with the map and each spec file's run cost and timeline.",
)
def spec_map(path: str | None, as_json: bool, html_file: Path | None) -> None:
    """Which code each spec file and section produced, and which spec is behind a code file.

    \b
    For each spec file, and each `## ` section in it, the code files that the
    generated commits implementing its spec commits changed over the history of
    HEAD: how many generated commits, lines added and removed. Reverted generated
    commits are shown apart. A spec commit that changed two sections counts under
    both. Each spec file also shows its runs and what they cost.

    PATH narrows it: a spec file shows its sections; a code file (or a directory)
    shows the inverse, the spec files and sections behind it and the commits not
    made by a run (edits by hand, reverts). Agent notes are left out.

    \b
    Examples:
      mdspec spec-map                     the whole map
      mdspec spec-map src/app.py          the spec sections behind a file
      mdspec spec-map --html map.html     a page to open in a browser
    """
    from mdspec.commands import spec_map as spec_map_mod

    _call_and_go(spec_map_mod.spec_map, Path.cwd(), path, as_json, html_file, _out)


@cli.group()
def hook() -> None:
    """Git hook entry points (installed by `mdspec init`)."""


@hook.command("post-commit")
def hook_post_commit() -> None:
    """The post-commit fast path: queue a spec commit and start the worker."""
    from mdspec.commands.hook import post_commit

    sys.exit(post_commit())


@cli.command(hidden=True)
@click.option("--wait-pid", type=int, default=None)
def worker(wait_pid: int | None) -> None:
    """Drain the queue (started by the hook)."""
    from mdspec.run import runner

    _call(runner.work, Path.cwd(), wait_pid, _out)


def main() -> int:
    try:
        cli.main(standalone_mode=True)  # click always ends with SystemExit in standalone mode
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    raise AssertionError("unreachable")
