"""The spec map as one self-contained HTML page: the map, and per spec file its runs' cost and timeline.

Nothing is fetched: the style is inline, the charts are inline SVG, there is no script. Everything that
comes from the repository (paths, headings, subjects, run ids) goes through `_e`, so a subject like
`<script>` shows as text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from mdspec.trace.specmap import CodeFile, CodeOrigins, Lines, RunEntry, SpecFile, SpecMap

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1d2430}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccd}
h3{font-size:1em;margin:1.2em 0 .3em}code,td.path,td.mono{font-family:ui-monospace,monospace}
td.mono,td.date{white-space:nowrap}
table{border-collapse:collapse;margin:.3em 0 1em}td,th{padding:.15em .7em;text-align:left;vertical-align:top}
th{font-weight:600;border-bottom:1px solid #ccd}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.section td{padding-top:.6em;font-weight:600}.gone{color:#888}.reverted{color:#a33}.landed{color:#275}
.muted{color:#667}.bar{display:inline-block;vertical-align:middle}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _date(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t is not None else "?"


def _cost(c: float | None) -> str:
    return f"${c:.4f}" if c is not None else "unknown"


def _bar(lines: Lines, most: int) -> str:
    """Lines added (green) and removed (red) as an inline SVG bar scaled to the largest row."""
    width = 120
    scale = width / most if most else 0.0
    a, r = round(lines.added * scale), round(lines.removed * scale)
    return (
        f'<svg class="bar" width="{width}" height="10" role="img" aria-label="+{lines.added} -{lines.removed}">'
        f'<rect x="0" y="1" width="{a}" height="8" fill="#3a8"/>'
        f'<rect x="{a}" y="1" width="{r}" height="8" fill="#c55"/></svg>'
    )


def _code_rows(code: Sequence[CodeFile], most: int) -> list[str]:
    rows = []
    for c in code:
        p, v = c.produced, c.reverted
        reverted = (
            f'<span class="reverted">reverted: {_plural(v.commits, "commit")} +{v.added:,} -{v.removed:,}</span>'
            if v.commits
            else ""
        )
        rows.append(
            f'<tr><td class="path">{_e(c.path)}</td><td class="n">{p.commits:,}</td>'
            f'<td class="n">+{p.added:,}</td><td class="n">-{p.removed:,}</td>'
            f"<td>{_bar(p, most)}</td><td>{reverted}</td></tr>"
        )
    return rows


def _spec_file(f: SpecFile) -> list[str]:
    most = max([c.produced.added + c.produced.removed for s in f.sections for c in s.code] + [0])
    out = [
        f'<section class="spec-file" data-path="{_e(f.path)}">',
        f"<h2><code>{_e(f.path)}</code></h2>",
        f'<p class="muted">{_plural(f.spec_commits, "spec commit")}, {_plural(len(f.runs), "run")}, cost '
        f"{_e(_total_cost(f))}</p>",
        "<table><tr><th>section / code file</th><th>generated commits</th><th>added</th><th>removed</th>"
        "<th></th><th></th></tr>",
    ]
    for s in f.sections:
        name = f"## {s.name}" if s.name else "(above the first ## heading)"
        gone = "" if s.present else ' <span class="gone">(no longer in the file)</span>'
        out.append(
            f'<tr class="section"><td colspan="6">{_e(name)}{gone} '
            f'<span class="muted">{_plural(s.spec_commits, "spec commit")}</span></td></tr>'
        )
        out += _code_rows(s.code, most) or ['<tr><td colspan="6" class="muted">no generated commit</td></tr>']
    out.append("</table>")
    out += _timeline(f.runs)
    out.append("</section>")
    return out


def _total_cost(f: SpecFile) -> str:
    if not f.runs:
        return "$0.0000"
    if f.unknown_cost_runs == len(f.runs):
        return "unknown"
    known = f"${f.known_cost:.4f}"
    return known if not f.unknown_cost_runs else f"{known} + {f.unknown_cost_runs} unknown"


def _timeline(runs: Sequence[RunEntry]) -> list[str]:
    if not runs:
        return ['<p class="muted">No runs recorded for this spec file.</p>']
    out = ["<h3>Runs</h3>", _strip(runs)]
    out.append(
        '<table class="timeline"><tr><th>date (UTC)</th><th>run</th><th>generated commit</th><th>tokens in</th>'
        "<th>tokens out</th><th>cache read</th><th>cache write</th><th>cost</th><th>state</th></tr>"
    )
    for r in runs:
        commit = (
            f"<code>{_e(r.generated[:10])}</code> {_e(r.subject)}" if r.generated else '<span class="muted">-</span>'
        )
        cells = "".join(
            f'<td class="n">{n:,}</td>' if n is not None else '<td class="n">?</td>' for n in r.tokens or (None,) * 4
        )
        out.append(
            f'<tr class="run" data-run="{_e(r.run_id)}"><td class="date">{_date(r.started)}</td>'
            f'<td class="mono">{_e(r.run_id)}</td>'
            f"<td>{commit}</td>{cells}<td>{_e(_cost(r.cost_usd))}</td>"
            f'<td class="{_e(r.state)}">{_e(r.state)}</td></tr>'
        )
    out.append("</table>")
    return out


def _strip(runs: Sequence[RunEntry]) -> str:
    """The runs as dots on a line from the first to the last: green landed, red reverted, grey otherwise."""
    times = [r.started for r in runs if r.started is not None]
    lo, hi = (min(times), max(times)) if times else (0.0, 0.0)
    width, pad = 600, 8
    dots = []
    for r in runs:
        t = r.started if r.started is not None else lo
        x = pad + ((t - lo) / (hi - lo) * (width - 2 * pad) if hi > lo else (width - 2 * pad) / 2)
        colour = {"landed": "#3a8", "reverted": "#c55"}.get(r.state, "#999")
        dots.append(
            f'<circle cx="{x:.1f}" cy="12" r="5" fill="{colour}"><title>{_e(_date(r.started))} {_e(r.run_id)} '
            f"{_e(r.state)}</title></circle>"
        )
    return (
        f'<svg width="{width}" height="24" role="img" aria-label="run timeline">'
        f'<line x1="{pad}" y1="12" x2="{width - pad}" y2="12" stroke="#ccd"/>{"".join(dots)}</svg>'
    )


def _inverse(code: Sequence[CodeOrigins]) -> list[str]:
    out = ["<h2>Code files and the specs behind them</h2>"]
    for c in code:
        out.append(f'<section class="code-file" data-path="{_e(c.path)}"><h3><code>{_e(c.path)}</code></h3>')
        p, v = c.produced, c.reverted
        summary = f"{_plural(p.commits, 'generated commit')} +{p.added:,} -{p.removed:,}"
        if v.commits:
            summary += f"; reverted: {_plural(v.commits, 'commit')} +{v.added:,} -{v.removed:,}"
        if c.other is not None:
            oth = c.other
            summary += f"; not from a run: {_plural(oth.commits, 'commit')} +{oth.added:,} -{oth.removed:,}"
        out.append(f'<p class="muted">{_e(summary)}</p>')
        if not c.origins:
            out.append("<p>No spec behind it: no generated commit changed it.</p></section>")
            continue
        out.append(
            "<table><tr><th>spec file</th><th>section</th><th>generated commits</th><th>added</th>"
            "<th>removed</th><th></th></tr>"
        )
        for o in c.origins:
            name = f"## {o.section}" if o.section else "(above the first ## heading)"
            rev = o.reverted
            reverted = (
                f"reverted: {_plural(rev.commits, 'commit')} +{rev.added:,} -{rev.removed:,}" if rev.commits else ""
            )
            out.append(
                f'<tr><td class="path">{_e(o.spec_file)}</td><td>{_e(name)}</td>'
                f'<td class="n">{o.produced.commits:,}</td><td class="n">+{o.produced.added:,}</td>'
                f'<td class="n">-{o.produced.removed:,}</td><td class="reverted">{_e(reverted)}</td></tr>'
            )
        out.append("</table></section>")
    return out


def page(m: SpecMap, files: Sequence[SpecFile], code: Sequence[CodeOrigins], title: str) -> str:
    """The whole page for the spec files and code files chosen."""
    head = (
        f"{_plural(len(m.files), 'spec file')}, {_plural(m.generated, 'generated commit')} "
        f"({m.reverted:,} reverted) up to {m.tip[:10]}"
    )
    body = [f"<h1>{_e(title)}</h1>", f'<p class="muted">{_e(head)}</p>']
    for f in files:
        body += _spec_file(f)
    if code:
        body += _inverse(code)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
