"""Scale: mdspec on a repository with 50,000 tracked files and 10,000 commits.

Prints, each measured side by side in one run:
- the hook fast path on the large repository vs on a 10-file repository (target <= 1.2);
- preparing the persistent worktree for a new run vs a fresh `git worktree add` of the same commit
  (target <= 0.2);
- computing the pending set over the 10,000 commits (ms), next to the same walk on a 10-file repository
  with as many commits (it must not grow with the number of tracked files).

The generated repositories are cached under benchmarks/.cache/ (delete it to rebuild).
Usage: python benchmarks/scale.py [--files 50000] [--commits 10000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mdspec import config  # noqa: E402
from mdspec.git import Repo  # noqa: E402
from mdspec.run import pending, worktree  # noqa: E402

CACHE = HERE / ".cache"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
ENV.update(GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.com")
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


def ensure(name: str, files: int, commits: int) -> Path:
    path = CACHE / f"{name}-{files}f-{commits}c"
    if not (path / ".git").is_dir():
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.monotonic()
        print(f"generating {path.name} ...", flush=True)
        fast_import(path, files, commits)
        print(f"  done in {time.monotonic() - t0:.1f}s", flush=True)
    return path


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def hook(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "mdspec", "hook", "post-commit"], cwd=path, env=ENV, check=True,
                   stdout=subprocess.DEVNULL)


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def options(doc: str | None) -> argparse.Namespace:
    """--files, --commits and --rounds: the benchmark repository's size and how many rounds to time."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15)
    return ap.parse_args()


def main() -> None:
    a = options(__doc__)
    big = ensure("big", a.files, a.commits)
    small = ensure("small", 10, a.commits)
    tiny = ensure("tiny", 10, 50)

    # 1. hook fast path (HEAD is a non-spec commit in both)
    hook(big), hook(tiny)  # warm the config cache
    hb, ht = [], []
    for _ in range(a.rounds):
        hb.append(timed(lambda: hook(big)))
        ht.append(timed(lambda: hook(tiny)))
    print(f"hook fast path: {median_ms(hb):.1f} ms on {a.files} files vs {median_ms(ht):.1f} ms on 10 files: "
          f"ratio {statistics.median(hb) / statistics.median(ht):.2f} (target <= 1.2)")

    # 2. persistent worktree vs fresh worktree add, same commit
    repo = Repo(big)
    state = big / ".git" / "mdspec"
    head = repo.resolve_ref("refs/heads/main") or ""
    prev = repo.commit(head).parents[0]
    worktree.prepare(repo, state, prev)  # the worktree exists from an earlier run
    fresh = big.parent / "fresh-worktree"
    tp, tf = [], []
    rounds = max(3, a.rounds // 3)
    for i in range(rounds):
        worktree.prepare(repo, state, prev if i % 2 else head)
        (worktree.path_for(state) / "scratch.txt").write_text("left by the last run\n")
        target = head if i % 2 else prev
        tp.append(timed(lambda target=target: worktree.prepare(repo, state, target)))
        shutil.rmtree(fresh, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=big, env=ENV, check=True)
        tf.append(timed(lambda: subprocess.run(["git", "worktree", "add", "-q", "--detach", str(fresh), head],
                                                cwd=big, env=ENV, check=True)))
    shutil.rmtree(fresh, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=big, env=ENV, check=True)
    print(f"worktree for a new run: {median_ms(tp):.0f} ms persistent vs {median_ms(tf):.0f} ms fresh "
          f"`git worktree add`: ratio {statistics.median(tp) / statistics.median(tf):.3f} (target <= 0.2)")

    # 3. pending set over all commits, large vs small tree
    pb, ps = [], []
    for _ in range(max(3, a.rounds // 3)):
        for path, out in ((big, pb), (small, ps)):
            r = Repo(path)
            cfg = config.load(path)
            tip = r.resolve_ref("refs/heads/main") or ""
            out.append(timed(lambda r=r, cfg=cfg, tip=tip: pending.find(r, tip, cfg)))
    print(f"pending set over {a.commits} commits: {median_ms(pb):.0f} ms with {a.files} files, "
          f"{median_ms(ps):.0f} ms with 10 files (ratio {statistics.median(pb) / statistics.median(ps):.2f})")


if __name__ == "__main__":
    main()
