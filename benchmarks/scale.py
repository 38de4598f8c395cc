"""Scale: mdspec on a repository with 50,000 tracked files and 10,000 commits.

Prints, each measured side by side in one run, as min / median / max and the ratio of medians:
- the hook fast path on the large repository vs on a 10-file repository (target <= 1.2);
- preparing the persistent worktree for a new run vs a fresh `git worktree add` of the same commit
  (target <= 0.2); the disk is let settle (sync) before each, interleaved: an add right after deleting a
  50,000-file tree measures the disk's backlog, not git;
- one run with a command backend that writes one file, worktree reused: from the run's start to the
  agent's first instruction vs one `git checkout` between the same two commits in a settled worktree
  (target <= 2), and from the agent's exit to the generated commit landed (the branch and the checkout
  have it: `landed_at` in the record) vs one `git read-tree -m -u` of the same change in the checkout
  (target <= 2.5); the git note and the record's last write, which follow, are printed apart;
- computing the pending set over the 10,000 commits, next to the same walk on a 10-file repository with
  as many commits (it must not grow with the number of tracked files).

The generated repositories (and the anchors' worktree) are cached under benchmarks/.cache/ of this
checkout (delete it to rebuild). BENCH_ONLY=hook,worktree,run,pending picks sections.
Usage: python benchmarks/scale.py [--files 50000] [--commits 10000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mdspec import config  # noqa: E402
from mdspec.fast.globs import Globs  # noqa: E402
from mdspec.git import Repo  # noqa: E402
from mdspec.run import pending, worktree  # noqa: E402

CACHE = HERE / ".cache"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
ENV.update(
    GIT_CONFIG_NOSYSTEM="1",
    GIT_AUTHOR_NAME="Bench",
    GIT_AUTHOR_EMAIL="b@example.com",
    GIT_COMMITTER_NAME="Bench",
    GIT_COMMITTER_EMAIL="b@example.com",
)
CONFIG = b'[agent]\nbackend = "command"\ncommand = "true"\n'


def fast_import(path: Path, files: int, commits: int) -> None:
    """Build the repository with one `git fast-import` stream: quick even for 50,000 files."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=ENV)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None
    w = proc.stdin.write
    t = 1_700_000_000

    def data(b: bytes) -> None:
        w(b"data %d\n" % len(b) + b + b"\n")

    def commit(n: int, msg: str, ops: list[bytes]) -> None:
        w(b"commit refs/heads/main\n")
        w(b"committer Bench <b@example.com> %d +0000\n" % (t + n))
        data(msg.encode())  # later commits continue the branch: fast-import needs no `from`
        for op in ops:
            w(op)

    def blob_op(path: str, content: bytes) -> bytes:
        return b"M 100644 inline " + path.encode() + b"\ndata %d\n" % len(content) + content + b"\n"

    ops = [blob_op(".mdspec.toml", CONFIG), blob_op("spec/app.md", b"# app\n")]
    per_dir = 100
    for i in range(files - 2):
        ops.append(blob_op(f"src/d{i // per_dir:04d}/f{i % per_dir:03d}.txt", b"line %d\n" % i))
    commit(1, "set up", ops)
    for n in range(2, commits + 1):
        if n % 50 == 0 and n < commits - 1:  # a spec commit, implemented by the next (generated) commit
            commit(n, f"spec: change {n}", [blob_op("spec/app.md", b"# app v%d\n" % n)])
        elif n % 50 == 1 and n > 50:
            spec_msg = f"mdspec: implement {n - 1}\n\nMdspec-Implements: {'0' * 40}\nMdspec-Run: r{n}\n"
            commit(n, spec_msg, [blob_op(f"src/d{n % max(1, files // per_dir):04d}/gen.txt", b"gen %d\n" % n)])
        else:
            i = (n * 7919) % (files - 2)
            commit(n, f"code {n}", [blob_op(f"src/d{i // per_dir:04d}/f{i % per_dir:03d}.txt", b"v%d\n" % n)])
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=path, check=True, env=ENV)
    subprocess.run(["git", "config", "user.name", "Bench"], cwd=path, check=True, env=ENV)
    subprocess.run(["git", "config", "user.email", "b@example.com"], cwd=path, check=True, env=ENV)


def ensure(name: str, files: int, commits: int, build: Callable[[Path, int, int], None] = fast_import) -> Path:
    """The cached repository, built first if missing; built aside and renamed, so a build cut short is
    never taken for a finished one."""
    path = CACHE / f"{name}-{files}f-{commits}c"
    if not (path / ".git").is_dir():
        shutil.rmtree(path, ignore_errors=True)
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        t0 = time.monotonic()
        print(f"generating {path.name} ...", flush=True)
        build(partial, files, commits)
        partial.rename(path)
        print(f"  done in {time.monotonic() - t0:.1f}s", flush=True)
    return path


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def hook(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mdspec", "hook", "post-commit"],
        cwd=path,
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, env=ENV, check=True, stdout=subprocess.DEVNULL)


def stats(xs: list[float]) -> str:
    ms = sorted(x * 1000 for x in xs)
    return f"min {ms[0]:.0f} / median {statistics.median(ms):.0f} / max {ms[-1]:.0f} ms"


def ratio(xs: list[float], anchor: list[float]) -> float:
    return statistics.median(xs) / statistics.median(anchor)


def settle() -> None:
    """Let the disk catch up (dirty pages written back) before a timed step, the same for both sides."""
    os.sync()
    time.sleep(0.2)


def options(doc: str | None) -> argparse.Namespace:
    """--files, --commits and --rounds: the benchmark repository's size and how many rounds to time."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15)
    return ap.parse_args()


def bench_hook(big: Path, tiny: Path, a: argparse.Namespace) -> None:
    """The hook fast path (HEAD is a non-spec commit in both)."""
    hook(big)  # warm the config cache
    hook(tiny)
    hb: list[float] = []
    ht: list[float] = []
    for _ in range(a.rounds):
        hb.append(timed(lambda: hook(big)))
        ht.append(timed(lambda: hook(tiny)))
    print(f"hook fast path, {a.files} files: {stats(hb)}")
    print(f"  anchor, the same on 10 files: {stats(ht)}")
    print(f"  ratio of medians {ratio(hb, ht):.2f} (target <= 1.2)")


def bench_worktree(big: Path, a: argparse.Namespace) -> None:
    """Preparing the persistent worktree vs a settled fresh `git worktree add` of the same commit."""
    repo = Repo(big)
    state = big / ".git" / "mdspec"
    head = repo.resolve_ref("refs/heads/main") or ""
    prev = repo.commit(head).parents[0]
    worktree.prepare(repo, state, prev)  # the worktree exists from an earlier run
    fresh = CACHE / "fresh-worktree"

    def drop_fresh() -> None:
        shutil.rmtree(fresh, ignore_errors=True)
        git(big, "worktree", "prune")

    tp: list[float] = []
    tf: list[float] = []
    for i in range(a.rounds):
        worktree.prepare(repo, state, prev if i % 2 else head)
        (worktree.path_for(state) / "scratch.txt").write_text("left by the last run\n")
        target = head if i % 2 else prev
        drop_fresh()
        for which in ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours"):
            settle()  # a fresh add right after deleting 50,000 files would measure the disk's backlog
            if which == "ours":
                tp.append(timed(partial(worktree.prepare, repo, state, target)))
            else:
                tf.append(timed(partial(git, big, "worktree", "add", "-q", "--detach", str(fresh), target)))
    drop_fresh()
    print(f"worktree for a new run (persistent, reset): {stats(tp)}")
    print(f"  anchor, a settled fresh `git worktree add`: {stats(tf)}")
    print(f"  ratio of medians {ratio(tp, tf):.3f} (target <= 0.2)")


BENCH_AGENT = (
    'd=$(dirname "$MDSPEC_SUMMARY_FILE"); echo "$EPOCHREALTIME" > "$d/started"; cat > /dev/null; '
    'echo "landed $BENCH_ROUND" > landed.txt; echo "bench run" > "$MDSPEC_SUMMARY_FILE"; '
    'echo "$EPOCHREALTIME" > "$d/exited"'
)


def stamp(path: Path) -> float:
    return float(path.read_text().strip().replace(",", "."))


def bench_run(big: Path, a: argparse.Namespace) -> None:
    """One run end to end with a command backend that writes one file: the run's own overhead around the
    agent, each part next to the git command that does the same work with none of mdspec's safety."""
    from mdspec.run import records, runner
    from mdspec.run.pending import SpecCommit

    repo = Repo(big)
    state = big / ".git" / "mdspec"
    branch = "refs/heads/main"
    head = repo.resolve_ref(branch) or ""
    prev = repo.commit(head).parents[0]
    spec_sha = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--grep=^spec: change", head],
        cwd=big,
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cfg = config.load(big)
    cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, command=BENCH_AGENT))
    spec = SpecCommit(repo.commit(spec_sha), pending.spec_paths(repo, repo.commit(spec_sha), Globs(cfg.watch)))
    req = runner.RunRequest(branch, (spec,))
    anchor_wt = CACHE / "anchor-worktree"  # a settled checkout of its own for the `git checkout` anchor
    if not (anchor_wt / ".git").exists():
        git(big, "worktree", "add", "-q", "--detach", str(anchor_wt), prev)
    git(anchor_wt, "checkout", "-q", "--detach", prev)
    git(big, "reset", "-q", "--hard", prev)
    worktree.prepare(repo, state, head)  # an earlier run left the worktree at the other commit
    os.environ["BENCH_ROUND"] = "0"
    start, finish, after, checkout, read_tree = [], [], [], [], []
    sandbox_mode = ""
    try:
        for i in range(a.rounds):
            base, other = (prev, head) if i % 2 == 0 else (head, prev)
            git(big, "reset", "-q", "--hard", base)
            os.environ["BENCH_ROUND"] = str(i)
            # The same change as the run's, to time git alone on it.
            git(anchor_wt, "checkout", "-q", "--detach", other)
            for which in ("ours", "anchor") if i % 2 == 0 else ("anchor", "ours"):
                settle()
                if which == "ours":
                    t0 = time.time()
                    rec = runner.Runner(repo, lambda _line: None).run(req, cfg)
                    t_end = time.time()
                    assert rec["status"] == records.LANDED, rec.get("reason")
                    sandbox_mode = rec.get("sandbox", "")
                    answer = records.runs_dir(state) / rec["id"] / "answer"
                    start.append(stamp(answer / "started") - t0)
                    # Landed: the branch and the checkout have the generated commit. The git note and the
                    # record's last write come after; they are printed apart.
                    finish.append(float(rec["landed_at"]) - stamp(answer / "exited"))
                    after.append(t_end - float(rec["landed_at"]))
                    landed = rec["landed_as"]
                else:
                    checkout.append(timed(partial(git, anchor_wt, "checkout", "-q", "--detach", base)))
            # git's own update of a checkout for the same change: read-tree -m -u of base -> the result.
            git(big, "reset", "-q", "--hard", base)
            settle()
            read_tree.append(timed(partial(git, big, "read-tree", "-m", "-u", base, landed)))
    finally:
        git(big, "reset", "-q", "--hard", head)
    print(f"a run on {a.files} files (sandbox {sandbox_mode}), worktree reused:")
    print(f"  run started -> agent started: {stats(start)}")
    print(f"    anchor, one `git checkout` between the two commits: {stats(checkout)}")
    print(f"    ratio of medians {ratio(start, checkout):.2f} (target <= 2)")
    print(f"  agent exited -> generated commit landed: {stats(finish)}")
    print(f"    anchor, one `git read-tree -m -u` of the same change: {stats(read_tree)}")
    print(f"    ratio of medians {ratio(finish, read_tree):.2f} (target <= 2.5)")
    print(f"  then the git note and the record's last write: {stats(after)}")


def bench_pending(big: Path, small: Path, a: argparse.Namespace) -> None:
    """The pending set over all commits, large vs small tree: it must not grow with the tracked files."""
    pb: list[float] = []
    ps: list[float] = []
    for _ in range(a.rounds):
        for path, out in ((big, pb), (small, ps)):
            r = Repo(path)
            cfg = config.load(path)
            tip = r.resolve_ref("refs/heads/main") or ""
            out.append(timed(partial(pending.find, r, tip, cfg)))
    print(f"pending set over {a.commits} commits with {a.files} files: {stats(pb)}")
    print(f"  the same with 10 files: {stats(ps)}")
    print(f"  ratio of medians {ratio(pb, ps):.2f}")


def main() -> None:
    a = options(__doc__)
    big = ensure("big", a.files, a.commits)
    small = ensure("small", 10, a.commits)
    tiny = ensure("tiny", 10, 50)
    only = os.environ.get("BENCH_ONLY", "hook,worktree,run,pending").split(",")
    if "hook" in only:
        bench_hook(big, tiny, a)
    if "worktree" in only:
        bench_worktree(big, a)
    if "run" in only:
        bench_run(big, a)
    if "pending" in only:
        bench_pending(big, small, a)


if __name__ == "__main__":
    main()
