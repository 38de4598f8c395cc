"""mdspec's commit trailers, parsed so that repeated keys are all kept.

pygit2's `message_trailers` folds repeats into one key, and a generated commit carries one
`Mdspec-Implements` line per spec commit, so this reads the last paragraph itself. No imports: the hook
fast path calls `is_generated` on every commit.
"""

from __future__ import annotations

IMPLEMENTS = "Mdspec-Implements"
RUN = "Mdspec-Run"
CHECK = "Mdspec-Check"
REVERTS = "Mdspec-Reverts"  # on commits made by `mdspec revert`


def parse(message: str) -> list[tuple[str, str]]:
    """The (key, value) trailers of the message's last paragraph, in order, repeats kept."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    out: list[tuple[str, str]] = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key.strip() or key != key.strip():
            if line.startswith((" ", "\t")) and out:  # folded continuation line
                out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
                continue
            return []  # not a trailer block
        out.append((key, value.strip()))
    return out


def values(message: str, key: str) -> list[str]:
    k = key.lower()
    return [v for tk, v in parse(message) if tk.lower() == k]


def is_generated(message: str) -> bool:
    """True for a commit made by mdspec (a run's result, or `mdspec revert`): it never starts a run."""
    return any(k.lower() in (RUN.lower(), REVERTS.lower()) for k, _ in parse(message))


def render(implements: list[str], run_id: str, check: str) -> str:
    lines = [f"{IMPLEMENTS}: {sha}" for sha in implements]
    lines.append(f"{RUN}: {run_id}")
    lines.append(f"{CHECK}: {check}")
    return "\n".join(lines)
