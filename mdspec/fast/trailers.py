"""mdspec's commit trailers, parsed so that repeated keys are all kept.

pygit2's `message_trailers` folds repeats into one key, and a generated commit carries one
`Mdspec-Implements` line per spec commit, so this reads the paragraphs itself. No imports: the hook
fast path calls `is_generated` on every commit.

A generated commit names each spec commit it implements twice: `Mdspec-Implements: <sha>`, and
`Mdspec-Patch-Id: <patch-id> <sha>` (the layout of `git patch-id` output) with the content identity of the
spec commit's change on watched paths, which survives rebase, reword and cherry-pick (DESIGN §3.2).
Generated commits made before patch-ids were recorded carry only the first.

`git merge --squash` (and hosted "squash and merge") put the squashed commits' messages, trailers and
all, into paragraphs of one message — git indents them by four spaces — so mdspec's own trailer blocks
are looked for in every paragraph, not only the last.
"""

from __future__ import annotations

IMPLEMENTS = "Mdspec-Implements"
PATCH_ID = "Mdspec-Patch-Id"
RUN = "Mdspec-Run"
CHECK = "Mdspec-Check"
REVERTS = "Mdspec-Reverts"  # on commits made by `mdspec revert`

# git's own lines that may sit in a trailer block without being `key: value` (`git cherry-pick -x`).
_GIT_LINES = ("(cherry picked from commit ",)


def _paragraphs(message: str) -> list[list[str]]:
    """The message's paragraphs as lists of lines; a line of only whitespace separates paragraphs."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in message.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _block(lines: list[str]) -> list[tuple[str, str]]:
    """The (key, value) pairs of a paragraph that is a trailer block, else []."""
    out: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith(_GIT_LINES):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key.strip() or key != key.strip():
            if line.startswith((" ", "\t")) and out:  # folded continuation line
                out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
                continue
            return []  # not a trailer block
        out.append((key, value.strip()))
    return out


def _dedent(lines: list[str]) -> list[str]:
    """A squashed message's paragraph without git's four-space indent (any common indent, really)."""
    width = min(len(ln) - len(ln.lstrip(" \t")) for ln in lines)
    return [ln[width:] for ln in lines]


def parse(message: str) -> list[tuple[str, str]]:
    """The (key, value) trailers of the message's last paragraph, in order, repeats kept."""
    paragraphs = _paragraphs(message)
    if len(paragraphs) < 2:
        return []
    return _block(paragraphs[-1])


def values(message: str, key: str) -> list[str]:
    """The values of `key` in the last paragraph's trailers, repeats kept."""
    k = key.lower()
    return [v for tk, v in parse(message) if tk.lower() == k]


def _has(block: list[tuple[str, str]], key: str) -> bool:
    k = key.lower()
    return any(tk.lower() == k for tk, _ in block)


def generated_blocks(message: str) -> list[list[tuple[str, str]]]:
    """mdspec's trailer blocks in the message, repeats kept: the last paragraph's when it says `Mdspec-Run`
    or `Mdspec-Reverts`, and each other paragraph (a squashed generated commit's, indented or not) that
    is a trailer block with both `Mdspec-Implements` and `Mdspec-Run` — the full shape, so prose in a
    human's message that merely mentions a trailer does not count."""
    if "mdspec-" not in message.lower():
        return []  # the common case, decided without splitting the message (the hook and the pending walk)
    paragraphs = _paragraphs(message)
    if len(paragraphs) < 2:
        return []
    out: list[list[tuple[str, str]]] = []
    for n, lines in enumerate(paragraphs[1:], 1):
        block = _block(_dedent(lines))
        if not block:
            continue
        if n == len(paragraphs) - 1 and lines[0][:1] not in (" ", "\t"):
            if _has(block, RUN) or _has(block, REVERTS):
                out.append(block)
        elif _has(block, RUN) and _has(block, IMPLEMENTS):
            out.append(block)
    return out


def is_generated(message: str) -> bool:
    """True for a commit made by mdspec (a run's result, or `mdspec revert`), or one that carries a
    squashed generated commit's trailers: it never starts a run."""
    return bool(generated_blocks(message))


def implements(message: str) -> list[tuple[str, str | None]]:
    """(spec sha, patch-id or None) for every spec commit the message's generated blocks implement."""
    out: list[tuple[str, str | None]] = []
    for block in generated_blocks(message):
        ids: dict[str, str] = {}
        for k, v in block:
            if k.lower() == PATCH_ID.lower():
                pid, _, sha = v.partition(" ")
                if sha.strip():
                    ids[sha.strip()] = pid
        for k, v in block:
            if k.lower() == IMPLEMENTS.lower() and v:
                out.append((v, ids.get(v)))
    return out


def run_and_check(message: str) -> tuple[str, str]:
    """(run id, check) from a generated commit's trailers ("" when absent)."""
    run = check = ""
    for block in generated_blocks(message):
        for k, v in block:
            if k.lower() == RUN.lower() and not run:
                run = v
            elif k.lower() == CHECK.lower() and not check:
                check = v
    return run, check


def render(implements: list[str], run_id: str, check: str, patch_ids: dict[str, str] | None = None) -> str:
    """The trailer block of a generated commit: what it implements (with each spec commit's patch-id when
    known), the run, the check."""
    lines = [f"{IMPLEMENTS}: {sha}" for sha in implements]
    lines += [f"{PATCH_ID}: {patch_ids[sha]} {sha}" for sha in implements if patch_ids and patch_ids.get(sha)]
    lines.append(f"{RUN}: {run_id}")
    lines.append(f"{CHECK}: {check}")
    return "\n".join(lines)
