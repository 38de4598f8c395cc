"""Landing: what mdspec's safe landing costs next to git doing the same update of the checkout by hand.

On the scale benchmark's 50,000-file repository, a one-file result is landed, alternately:
- by `land.land` (wait-free case: scan for the user's git commands, take index.lock, journal, read-tree
  into a copy of the index, swap, compare-and-swap of the branch);
- by the anchor: `git read-tree -m -u OLD NEW` and `git update-ref BRANCH NEW OLD` — the bare minimum
  git itself needs for the same change, with none of the safety.
Each round resets the checkout between the two (not timed). Prints min/median/max of each and the ratio
of medians; the target is that landing stays under a few hundred milliseconds and within 3x the anchor,
negligible next to a run that takes minutes.

Usage: python benchmarks/landing.py [--files 50000] [--commits 10000] [--rounds 15]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from scale import ENV, ensure, options  # noqa: E402

from mdspec.git import Repo  # noqa: E402
from mdspec.run import land, usergit  # noqa: E402


def git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, env=ENV, check=True, stdout=subprocess.DEVNULL)


def result_on(repo: Repo, tip: str, n: int) -> str:
    """A commit on `tip` changing one file, as a run's result would."""
    import pygit2  # the benchmark builds its commits directly; mdspec itself goes through mdspec.git

    pg = repo.pg
    base = pg[tip].peel(pygit2.Commit)
    builder = pg.TreeBuilder(base.tree)
    blob = pg.create_blob(b"landed %d\n" % n)
    builder.insert("landed.txt", blob, pygit2.enums.FileMode.BLOB)
    who = pygit2.Signature("Bench", "b@example.com")
    return str(pg.create_commit(None, who, who, f"mdspec: bench {n}\n", builder.write(), [base.id]))


def stats(xs: list[float]) -> str:
    ms = sorted(x * 1000 for x in xs)
    return f"min {ms[0]:.0f} / median {statistics.median(ms):.0f} / max {ms[-1]:.0f} ms"


def main() -> None:
    a = options(__doc__)
    big = ensure("big", a.files, a.commits)
    repo = Repo(big)
    branch = "refs/heads/main"
    tip = repo.resolve_ref(branch) or ""
    git(big, "reset", "-q", "--hard", tip)
    ours: list[float] = []
    anchor: list[float] = []
    scans: list[float] = []
    for n in range(a.rounds):
        for which in ("ours", "anchor") if n % 2 == 0 else ("anchor", "ours"):
            result = result_on(repo, tip, n)
            t0 = time.perf_counter()
            if which == "ours":
                landing = land.land(repo, branch, result, f"bench-{n}")
                assert landing.landed, landing.reason
            else:
                git(big, "read-tree", "-m", "-u", tip, result)
                git(big, "update-ref", branch, result, tip)
            (ours if which == "ours" else anchor).append(time.perf_counter() - t0)
            git(big, "reset", "-q", "--hard", tip)
        t0 = time.perf_counter()
        usergit.running(big, big / ".git")
        scans.append(time.perf_counter() - t0)
    print(f"landing a one-file result on {a.files} files: mdspec {stats(ours)}")
    print(f"  anchor, git read-tree -m -u + update-ref: {stats(anchor)}")
    print(f"  ratio of medians {statistics.median(ours) / statistics.median(anchor):.2f} (target <= 3)")
    print(f"  of which one scan for the user's git commands: {stats(scans)}")


if __name__ == "__main__":
    main()
