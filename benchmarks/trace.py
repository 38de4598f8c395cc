"""Traceability: `mdspec blame`, `mdspec show` and `mdspec spec-map` on a large mdspec history.

The repository is built once with one `git fast-import` stream and cached under benchmarks/.cache/ (as
scale.py's are; delete it to rebuild): 50,000 tracked files and 10,000 commits shaped like a real mdspec
history. A `.mdspec.toml` (command backend); six spec files under spec/ with `## ` sections; 1,000 spec
commits, each changing a few lines of one section; each followed, mostly directly and sometimes after a
hand commit, by a generated commit with the trailers mdspec writes (`Mdspec-Implements` with the spec
commit's real sha, read back from fast-import through `get-mark`; `Mdspec-Patch-Id`, left out on some as
on old generated commits; `Mdspec-Run`; `Mdspec-Check`) and a run note in refs/notes/mdspec. Generated
commits change a few modules of their section and often a few lines of the 500-line src/app/core.py,
which hand commits edit too, so its blame has hundreds of distinct commits. Some generated commits are
reverted by a `git revert`-style commit, and the next run implements the reverted spec commit again with
its own; a handful of hand commits change thousands of files.

Prints, measured side by side in one run, interleaved, after one warm-up, as min / median / max:
- `mdspec blame src/app/core.py`, and with --json, vs `git blame` of the same file (target ratio <= 2),
  with `mdspec --version` beside them for the part that is only starting Python and the CLI;
- `mdspec show` of the spec commit about 500 commits back (target <= 0.5 s), and of one in the middle of
  the history, next to `git show --stat` of the same commit;
- `mdspec spec-map` over the whole history (target <= 10 s), next to `git log --name-only --format=%H`
  over the same history; `mdspec spec-map spec/accounts.md` and the inverse `mdspec spec-map
  src/app/core.py`.
mdspec runs as `python -m mdspec` with PYTHONPATH set to the checkout under test (this one unless
--checkout); a command that checkout does not have yet is reported as not available and skipped.
BENCH_ONLY=blame,show,spec-map picks sections; --profile prints where the time goes for a missed target.
Usage: python benchmarks/trace.py [--files 50000] [--commits 10000] [--rounds 7] [--checkout DIR] [--profile]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import IO

from scale import CONFIG, ENV, HERE, ensure, ratio, stats, timed

from mdspec.fast import trailers
from mdspec.git import Repo
from mdspec.run import costs, pending

T0 = 1_700_000_000  # the first commit's time; commits are STEP seconds apart
STEP = 600
SPEC_FILES = ("accounts", "billing", "catalog", "orders", "search", "shipping")
SPEC_WEIGHTS = (5, 3, 2, 2, 1, 1)  # some spec files change more often than others, as in real projects
SECTIONS = ("Overview", "Data model", "Validation", "Errors", "Permissions", "Events", "Limits", "Migration")
SECTION_LINES = 10
MODULES = 4  # code modules per section: src/app/<spec file>/<section>_<n>.py
MODULE_LINES = 40
CORE = "src/app/core.py"
CORE_LINES = 500
HOT_SPEC = "spec/accounts.md"
REVERT_EVERY = 50  # one generated commit in 50 is reverted
BULK = 5  # hand commits that change thousands of files
BULK_FILES = 2_000
WORDS = ("account", "invoice", "order", "item", "session", "token", "limit", "event", "report", "address")
VERBS = ("must keep", "may drop", "records", "rejects", "rounds", "caches", "validates", "logs")


def spec_path(name: str) -> str:
    return f"spec/{name}.md"


def slug(title: str) -> str:
    return title.lower().replace(" ", "_")


def module_paths(name: str, title: str) -> list[str]:
    return [f"src/app/{name}/{slug(title)}_{j}.py" for j in range(MODULES)]


def filler_path(i: int) -> str:
    return f"lib/d{i // 100:04d}/f{i % 100:02d}.txt"


def code_line(i: int, rev: int) -> str:
    return f"VALUE_{i:03d} = compute({i}, {rev})  # rev {rev}\n"


@dataclasses.dataclass
class SpecFile:
    """A spec file's lines and where each `## ` section's body lies (changes replace lines, so it stays)."""

    path: str
    lines: list[str]
    sections: list[tuple[str, int]]  # (title, index of the first body line)

    @classmethod
    def new(cls, name: str) -> SpecFile:
        lines = [f"# {name.capitalize()}\n", "\n", f"What the {name} part of the application does.\n", "\n"]
        sections = []
        for title in SECTIONS:
            lines += [f"## {title}\n", "\n"]
            sections.append((title, len(lines)))
            lines += [f"- Rule {k}: the {name} {title.lower()} rule {k} holds.\n" for k in range(SECTION_LINES)]
            lines.append("\n")
        return cls(spec_path(name), lines, sections)

    def text(self) -> bytes:
        return "".join(self.lines).encode()


@dataclasses.dataclass(frozen=True)
class SpecChange:
    sha: str
    path: str
    title: str
    subject: str
    patch_id: str


class Stream:
    """One `git fast-import` process; the shas of marks are read back through --cat-blob-fd."""

    def __init__(self, path: Path) -> None:
        rfd, wfd = os.pipe()
        self.proc = subprocess.Popen(
            ["git", "fast-import", "--quiet", f"--cat-blob-fd={wfd}"],
            cwd=path,
            stdin=subprocess.PIPE,
            env=ENV,
            pass_fds=(wfd,),
        )
        os.close(wfd)
        self.answers = os.fdopen(rfd, "rb")
        assert self.proc.stdin is not None
        self.out: IO[bytes] = self.proc.stdin
        self.marks = 0

    def data(self, content: bytes) -> None:
        self.out.write(b"data %d\n" % len(content) + content + b"\n")

    def commit(self, when: int, message: str, changes: dict[str, bytes], ref: str = "refs/heads/main") -> int:
        """A commit on `ref` (continuing it: fast-import needs no `from`); returns its mark."""
        self.marks += 1
        self.out.write(b"commit %s\nmark :%d\n" % (ref.encode(), self.marks))
        self.out.write(b"committer Bench <b@example.com> %d +0000\n" % when)
        self.data(message.encode())
        for path, content in changes.items():
            self.out.write(b"M 100644 inline %s\n" % path.encode())
            self.data(content)
        return self.marks

    def notes(self, when: int, notes: dict[int, str]) -> None:
        """One commit on refs/notes/mdspec with a note on each marked commit."""
        self.out.write(b"commit %s\ncommitter Bench <b@example.com> %d +0000\n" % (costs.NOTES_REF.encode(), when))
        self.data(b"mdspec: notes for the runs\n")
        for mark, text in notes.items():
            self.out.write(b"N inline :%d\n" % mark)
            self.data(text.encode())

    def sha(self, mark: int) -> str:
        self.out.write(b"get-mark :%d\n" % mark)
        self.out.flush()  # fast-import answers only once it has read the request
        return self.answers.readline().decode().strip()

    def close(self) -> None:
        self.out.close()
        self.answers.close()
        if self.proc.wait() != 0:
            raise SystemExit("git fast-import failed")


def patch_id(path: str, old: list[str], new: list[str]) -> str:
    """`git patch-id --stable` of a one-file change, from a unified diff made here: the objects are still
    inside fast-import, where no other git process can read them."""
    diff = f"diff --git a/{path} b/{path}\n" + "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", n=3))
    out = subprocess.run(["git", "patch-id", "--stable"], input=diff.encode(), capture_output=True, env=ENV, check=True)
    return out.stdout.decode().split()[0]


class History:
    """The history written into a Stream, with the content of the files it changes kept in memory."""

    def __init__(self, stream: Stream, files: int) -> None:
        self.s = stream
        self.rng = random.Random(12)
        self.n = 0
        self.specs = {name: SpecFile.new(name) for name in SPEC_FILES}
        self.code: dict[str, list[str]] = {CORE: [code_line(i, 0) for i in range(CORE_LINES)]}
        for name in SPEC_FILES:
            for title in SECTIONS:
                for p in module_paths(name, title):
                    self.code[p] = [f"# {p}\n"] + [code_line(i, 0) for i in range(1, MODULE_LINES)]
        self.fillers = files - 1 - len(self.specs) - len(self.code)
        if self.fillers < BULK_FILES:
            raise SystemExit(f"--files must be at least {files - self.fillers + BULK_FILES}")
        self.notes: dict[int, str] = {}
        self.pending_again: list[SpecChange] = []  # reverted, implemented again by the next run

    def commit(self, message: str, changes: dict[str, bytes]) -> int:
        self.n += 1
        return self.s.commit(T0 + self.n * STEP, message, changes)

    def code_bytes(self, path: str) -> bytes:
        return "".join(self.code[path]).encode()

    def setup(self) -> None:
        changes = {".mdspec.toml": CONFIG}
        changes.update({s.path: s.text() for s in self.specs.values()})
        changes.update({p: self.code_bytes(p) for p in self.code})
        changes.update({filler_path(i): b"line %d\n" % i for i in range(self.fillers)})
        self.commit("set up the project", changes)

    def spec_commit(self) -> SpecChange:
        name = self.rng.choices(SPEC_FILES, SPEC_WEIGHTS)[0]
        spec = self.specs[name]
        title, first = self.rng.choice(spec.sections)
        old = list(spec.lines)
        start = first + self.rng.randrange(SECTION_LINES - 2)
        for k in range(start, start + self.rng.randint(1, 3)):
            w, v = self.rng.choice(WORDS), self.rng.choice(VERBS)
            spec.lines[k] = f"- Rule {k - first}: the {w} {v} every {self.rng.choice(WORDS)} (rev {self.n + 1}).\n"
        subject = f"spec({name}): {title}: revise the rules (rev {self.n + 1})"
        mark = self.commit(subject + "\n", {spec.path: spec.text()})
        return SpecChange(self.s.sha(mark), spec.path, title, subject, patch_id(spec.path, old, spec.lines))

    def rewrite(self, path: str, lines: int, first: int = 1) -> None:
        code = self.code[path]
        start = self.rng.randrange(first, len(code) - lines)
        for i in range(start, start + lines):
            code[i] = code_line(i, self.n + 1)

    def generated(self, spec: SpecChange, with_patch_id: bool) -> tuple[int, dict[str, bytes]]:
        """The generated commit of a run that implements `spec` (and any reverted one pending again);
        returns its mark and the content its files had before."""
        name = spec.path.removeprefix("spec/").removesuffix(".md")
        paths = self.rng.sample(module_paths(name, spec.title), self.rng.randint(1, 3))
        if self.rng.random() < 0.6:
            paths.append(CORE)
        before = {p: self.code_bytes(p) for p in paths}
        for p in paths:
            self.rewrite(p, self.rng.randint(2, 4))
        specs = [*self.pending_again, spec]
        self.pending_again = []
        run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(T0 + (self.n + 1) * STEP)) + f"-{self.n:06x}"
        ids = {s.sha: s.patch_id for s in specs} if with_patch_id else None
        body = f"Updated {', '.join(paths)} for the {spec.title.lower()} rules."
        message = f"mdspec: implement {spec.subject}\n\n{body}\n\n"
        message += trailers.render([s.sha for s in specs], run_id, "passed", ids) + "\n"
        mark = self.commit(message, {p: self.code_bytes(p) for p in paths})
        self.notes[mark] = self.note(run_id, specs)
        return mark, before

    def note(self, run_id: str, specs: Sequence[SpecChange]) -> str:
        started = T0 + self.n * STEP - self.rng.randint(30, 500)
        usage = {"input_tokens": self.rng.randint(2_000, 90_000), "output_tokens": self.rng.randint(200, 9_000)}
        rec = {
            "id": run_id,
            "backend": "command",
            "turns": self.rng.randint(1, 30),
            "usage": usage,
            "cost_usd": round((usage["input_tokens"] * 3 + usage["output_tokens"] * 15) / 1e6, 6),
            "check": "passed",
            "started": started,
            "spec_commits": [s.sha for s in specs],
            "spec_files": list(dict.fromkeys(s.path for s in specs)),
        }
        return costs.note_text(rec, now=T0 + self.n * STEP)

    def revert(self, mark: int, spec: SpecChange, before: dict[str, bytes]) -> None:
        """A `git revert` of the generated commit just made: its spec commit is pending again."""
        for p, content in before.items():
            self.code[p] = content.decode().splitlines(keepends=True)
        sha = self.s.sha(mark)
        self.commit(f'Revert "mdspec: implement {spec.subject}"\n\nThis reverts commit {sha}.\n', before)
        self.pending_again.append(spec)

    def hand(self) -> None:
        """A commit by hand: mostly elsewhere in the tree, sometimes in the generated code."""
        r = self.rng.random()
        if r < 0.04:
            self.rewrite(CORE, self.rng.randint(1, 3))
            self.commit(f"core: hand fix {self.n + 1}\n", {CORE: self.code_bytes(CORE)})
        elif r < 0.12:
            p = self.rng.choice([p for p in self.code if p != CORE])
            self.rewrite(p, self.rng.randint(1, 2))
            self.commit(f"tweak {p} by hand\n", {p: self.code_bytes(p)})
        else:
            i = self.rng.randrange(self.fillers)
            self.commit(f"lib: change {i}\n", {filler_path(i): b"v%d\n" % (self.n + 1)})

    def bulk(self, first: bool) -> None:
        """A hand commit that changes thousands of files; the first also stamps every code file's header."""
        start = self.rng.randrange(self.fillers - BULK_FILES)
        changes = {
            filler_path(i): b"reformatted %d at %d\n" % (i, self.n + 1) for i in range(start, start + BULK_FILES)
        }
        if first:
            for p, code in self.code.items():
                code[0] = f"# {p} (reformatted)\n"
                changes[p] = self.code_bytes(p)
        self.commit(f"reformat {len(changes)} files\n", changes)


def build(path: Path, files: int, commits: int) -> None:
    """The whole history in one fast-import stream: per spec commit a slot of about commits / specs commits
    (the spec commit, its generated commit, maybe a revert or a bulk commit, hand commits)."""
    specs = commits // 10
    base, extra = divmod(commits - 1, specs)
    if base < 5:
        raise SystemExit("--commits too small")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=ENV)
    stream = Stream(path)
    h = History(stream, files)
    h.setup()
    bulk_slots = {specs * k // (BULK + 1) for k in range(1, BULK + 1)}
    for i in range(specs):
        before = h.n
        spec = h.spec_commit()
        if h.rng.random() < 0.15:
            h.hand()  # someone commits in between: the run lands after it
        mark, old = h.generated(spec, with_patch_id=h.rng.random() < 0.9)
        if i % REVERT_EVERY == REVERT_EVERY // 2:
            h.revert(mark, spec, old)
        if i in bulk_slots:
            h.bulk(first=i == min(bulk_slots))
        while h.n - before < base + (i < extra):
            h.hand()
    stream.notes(T0 + (h.n + 1) * STEP, h.notes)
    stream.close()
    for args in (["checkout", "-q", "-f", "main"], ["config", "user.name", "Bench"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=ENV)
    subprocess.run(["git", "config", "user.email", "b@example.com"], cwd=path, check=True, env=ENV)
    # What `git gc` leaves behind in any repository that has lived a while.
    subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=path, check=True, env=ENV)


def git_out(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, env=ENV, check=True, capture_output=True, text=True).stdout


def sanity(path: Path, files: int, commits: int) -> None:
    """The repository is what the benchmark claims: counts, trailers, patch-ids as mdspec computes them."""
    t0 = time.monotonic()
    generated = git_out(path, "log", "--format=%H", "--grep=^Mdspec-Run: ", "main").split()
    counts = {
        "commits": (int(git_out(path, "rev-list", "--count", "main")), commits),
        "tracked files": (len(git_out(path, "ls-files", "-z").split("\0")) - 1, files),
        "generated commits": (len(generated), commits // 10),
        "reverts": (len(git_out(path, "log", "--format=%H", "--grep=^This reverts commit ", "main").split()), -1),
        "notes": (len(git_out(path, "notes", f"--ref={costs.NOTES_REF}", "list").splitlines()), commits // 10),
    }
    bad = [f"{k} {got} (expected {want})" for k, (got, want) in counts.items() if want >= 0 and got != want]
    repo = Repo(path)
    recorded = {
        spec: pid
        for sha in generated[:: max(1, len(generated) // 25)]
        for spec, pid in trailers.implements(repo.commit(sha).message)
        if pid is not None
    }
    changed = [(s, git_out(path, "diff-tree", "--no-commit-id", "--name-only", "-r", s).split()) for s in recorded]
    real = pending.patch_ids(repo, changed)
    bad += [
        f"patch-id of {s[:10]} is {real.get(s)}, trailer says {pid}"
        for s, pid in recorded.items()
        if real.get(s) != pid
    ]
    blamed = set(re.findall(r"^([0-9a-f]{40}) ", git_out(path, "blame", "--porcelain", CORE), re.M))
    if bad:
        raise SystemExit("the benchmark repository is not as built: " + "; ".join(bad))
    print(
        f"  sanity: {', '.join(f'{got} {k}' for k, (got, _) in counts.items())}; {len(recorded)} patch-ids as mdspec "
        f"computes them; {CORE} blames {len(blamed)} commits, {len(blamed & set(generated))} generated "
        f"({time.monotonic() - t0:.1f}s)",
        flush=True,
    )


class Failed(Exception):
    """A measured command exited non-zero: its section is skipped with the command's last error line."""


@dataclasses.dataclass(frozen=True)
class Bench:
    repo: Path
    checkout: Path
    rounds: int
    profile: bool
    stderr: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # bytes each run wrote there

    def mdspec(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mdspec", *args]

    def env(self) -> dict[str, str]:
        return {**ENV, "PYTHONPATH": str(self.checkout)}

    def available(self, command: str) -> bool:
        proc = subprocess.run(
            self.mdspec(command, "--help"), cwd=self.repo, env=self.env(), capture_output=True, check=False
        )
        if proc.returncode != 0:
            print(f"mdspec {command}: not available in this checkout", flush=True)
        return proc.returncode == 0

    def run(self, argv: list[str], errors: list[int]) -> None:
        proc = subprocess.run(argv, cwd=self.repo, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
            raise Failed(f"{' '.join(argv[2:] if argv[0] == sys.executable else argv)}: exit {proc.returncode}: {last}")
        errors.append(len(proc.stderr))

    def measure(self, cases: dict[str, list[str]]) -> tuple[dict[str, list[float]], dict[str, float]]:
        """Each case once to warm up (its time kept apart), then `rounds` rounds in a rotating order."""
        self.stderr.update({name: [] for name in cases})
        first = {name: timed(partial(self.run, argv, self.stderr[name])) for name, argv in cases.items()}
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for i in range(self.rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                times[name].append(timed(partial(self.run, cases[name], self.stderr[name])))
        return times, first

    def report(
        self, name: str, xs: list[float], first: float, anchor: list[float], target: float, absolute: bool
    ) -> None:
        r = ratio(xs, anchor)
        if absolute:
            missed = statistics.median(xs) > target
            goal = f"ratio {r:.2f} to the anchor, median {statistics.median(xs):.2f} s (target ≤ {target:g} s)"
        else:
            missed = r > target
            goal = f"ratio {r:.2f} (target ≤ {target:g})"
        print(f"{name}: {stats(xs)}, {goal}{'  <-- MISSED' if missed else ''}")
        print(f"    first run (cold): {first * 1000:.0f} ms", flush=True)
        if missed and self.profile:
            self.profile_of(name.removeprefix("mdspec ").split())

    def anchor(self, name: str, xs: list[float]) -> None:
        print(f"  anchor {name}: {stats(xs)}", flush=True)

    def profile_of(self, args: list[str]) -> None:
        """Where the time goes: cProfile of one run, the top 25 by cumulative time."""
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "profile"
            subprocess.run(
                [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "mdspec", *args],
                cwd=self.repo,
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if out.exists():
                pstats.Stats(str(out)).sort_stats("cumulative").print_stats(25)
                sys.stdout.flush()


def bench_blame(b: Bench) -> None:
    if not b.available("blame"):
        return
    ours, js, anchor = f"mdspec blame {CORE}", f"mdspec blame --json {CORE}", f"git blame {CORE}"
    floor = "mdspec --version"
    cases = {
        ours: b.mdspec("blame", CORE),
        js: b.mdspec("blame", "--json", CORE),
        anchor: ["git", "blame", CORE],
        floor: b.mdspec("--version"),
    }
    t, first = b.measure(cases)
    b.report(ours, t[ours], first[ours], t[anchor], 2, absolute=False)
    b.report(js, t[js], first[js], t[anchor], 2, absolute=False)
    b.anchor(anchor, t[anchor])
    print(f"  the interpreter's and the CLI's start alone, {floor}: {stats(t[floor])}", flush=True)


def spec_commits(repo: Path) -> list[tuple[int, str]]:
    """(commits back from the tip, sha) of every spec commit on the first-parent history."""
    log = git_out(repo, "log", "--first-parent", "--format=%H %s", "main").splitlines()
    return [(i, line[:40]) for i, line in enumerate(log) if line[41:].startswith("spec(")]


def bench_show(b: Bench) -> None:
    if not b.available("show"):
        return
    specs = spec_commits(b.repo)
    # The one the target names, and one from the middle of the history: further back, a longer walk.
    last = specs[-1][0]
    picks = [next((i, s) for i, s in specs if i >= back) for back in (min(500, last), last // 2)]
    cases: dict[str, list[str]] = {}
    for back, sha in picks:
        cases[f"mdspec show {sha[:10]} ({back} commits back)"] = b.mdspec("show", sha)
        cases[f"git show --stat {sha[:10]}"] = ["git", "show", "--stat", sha]
    t, first = b.measure(cases)
    names = list(cases)
    for ours, anchor in zip(names[::2], names[1::2], strict=True):
        b.report(ours, t[ours], first[ours], t[anchor], 0.5, absolute=True)
        b.anchor(anchor, t[anchor])


def bench_spec_map(b: Bench) -> None:
    if not b.available("spec-map"):
        return
    whole, anchor = "mdspec spec-map", "git log --name-only --format=%H main"
    one, inverse = f"mdspec spec-map {HOT_SPEC}", f"mdspec spec-map {CORE}"
    cases = {
        whole: b.mdspec("spec-map"),
        anchor: anchor.split(),
        one: b.mdspec("spec-map", HOT_SPEC),
        inverse: b.mdspec("spec-map", CORE),
    }
    t, first = b.measure(cases)
    for name in (whole, one, inverse):
        b.report(name, t[name], first[name], t[anchor], 10, absolute=True)
    b.anchor(anchor, t[anchor])
    if statistics.median(t[whole]) > 1:
        print(f"  progress: {whole} wrote {max(b.stderr[whole])} bytes to stderr (a pipe, not a terminal)")


def options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--checkout", type=Path, default=HERE.parent, help="the mdspec checkout to measure")
    ap.add_argument("--profile", action="store_true", help="profile each command that misses its target")
    return ap.parse_args()


def main() -> None:
    a = options()
    repo = ensure("trace", a.files, a.commits, build)
    sanity(repo, a.files, a.commits)
    b = Bench(repo, a.checkout.resolve(), a.rounds, a.profile)
    sections = {"blame": bench_blame, "show": bench_show, "spec-map": bench_spec_map}
    for name in os.environ.get("BENCH_ONLY", ",".join(sections)).split(","):
        try:
            sections[name](b)
        except Failed as e:
            print(f"{name}: FAILED: {e}", flush=True)


if __name__ == "__main__":
    main()
