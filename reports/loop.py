"""The story of an `examiner loop` on one HTML page (self-contained, no scripts).

Per round: the model examined, the failure modes the search found (new ones: every mode
of round k > 1 is found on the fine-tuned model), their failure rates before and after
fine-tuning on the same fresh samples, whether earlier rounds' modes stay fixed, the
held-out everyday (in-distribution) error before and after, and the CPU time.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

FIXED_BELOW = 0.2
# The style of the loop's and the peel's pages (reports/peel.py).
PAGE_STYLE = """<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td.l { text-align: left; font-size: 13px; } th { background: #f4f4f4; } .note { color: #666; font-size: 13px; }
code { font-size: 13px; }
</style>"""


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _rate(x: dict) -> str:
    """A recheck cell: the rate and the k of n fair samples it counts."""
    if x.get("rate") is None:
        return "-"
    k, n = x.get("k"), x.get("n")
    return _pct(x["rate"]) + (f" <span class=note>{k}/{n}</span>" if k is not None and n else "")


def _mm(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _bar(v, colour: str) -> str:
    if v is None:
        return ""
    w = max(0.0, min(1.0, float(v))) * 120
    return (f'<svg width="124" height="10" role="img"><rect width="120" height="10" fill="#eee"/>'
            f'<rect width="{w:.1f}" height="10" fill="{colour}"/></svg>')


def _constrained(mode: dict) -> str:
    """The mode in words (the run report's description) over its first bounds in [-1, 1];
    only the bounds for a loop saved before descriptions were stored."""
    c = mode.get("constrained") or {}
    bounds = ", ".join(f"{escape(k)} in [{lo:+.2f}, {hi:+.2f}]" for k, (lo, hi) in list(c.items())[:6]) or "-"
    if mode.get("description"):
        return (f"{escape(mode['description'])}<details><summary>{len(c)} constrained dimension(s)</summary>"
                f"<small>{bounds}</small></details>")
    return bounds


_REGION_WORDS = {"need": " (drawn in what each failure needs)",
                 "failures": " (drawn near the failing scenes the search logged, inside a mode or not)"}


def _set_mix(c: dict) -> str:
    where = _REGION_WORDS.get(c.get("mode_region") or "box", "")
    if c.get("mode_scenes"):
        return f"about {c['mode_scenes']} per failure mode{where}, the rest from the whole space"
    return f"{100 * c['base_share']:.0f}% from the whole space, the rest in the modes{where}"


def _need_cell(x: dict | None) -> str:
    if not x:
        return "- (needs nothing alone)"
    dims = ", ".join(escape(str(d)) for d in x.get("dimensions", []))
    return f"{_pct(x.get('rate_before'))} &rarr; {_pct(x.get('rate_after'))} <span class=note>({dims}; {x.get('n', '?')} scenes)</span>"


def round_section(r: dict) -> str:
    k = r["round"]
    parts = [f"<h2>Round {k}</h2>",
             f"<p>Examined <code>{escape(str(r.get('model_before')))}</code>"
             + (f"; fine-tuned into <code>{escape(str(r['model_after']))}</code>" if r.get("model_after") else "")
             + ".</p>"]
    ex = r.get("examine")
    if not ex:
        return "\n".join(parts + ["<p>Not examined yet.</p>"])
    parts.append(f"<p>The search made {ex['evaluations']} evaluations ({ex['failures']} failing) and found "
                 f"<b>{len(ex['modes'])}</b> failure mode(s)" + (" &mdash; all new: the model is the fine-tuned one"
                                                                  if k > 1 and ex["modes"] else "") + "."
                 + (f" <a href=\"round-{k}/run/report.html\">The round's run report</a> (examples, every mode "
                    "in words, whole-run views)." if ex.get("report") else "") + "</p>")
    if r.get("stopped"):
        parts.append(f"<p><i>{escape(r['stopped'])}.</i></p>")
    if r.get("base_share") is not None:
        parts.append(f"<p>Its fine-tuning set: {100 * (1 - r['base_share']):.0f}% of the scenes in the modes, "
                     f"{100 * r['base_share']:.0f}% from the whole space.</p>")
    rc = r.get("recheck")
    if ex["modes"]:
        rows = []
        by_id_b = {m["id"]: m for m in (rc or {}).get("before", [])}
        by_id_a = {m["id"]: m for m in (rc or {}).get("after", [])}
        need = {x["id"]: x for x in (rc or {}).get("need") or []}
        order = sorted(ex["modes"], key=lambda m: by_id_b.get(m["id"], {}).get("rank") or m.get("rank") or 0)
        for m in order:
            b, a = by_id_b.get(m["id"], {}), by_id_a.get(m["id"], {})
            fixed = a.get("rate") is not None and a["rate"] < FIXED_BELOW
            rows.append(
                f"<tr><td>{b.get('rank') or a.get('rank') or m.get('rank') or m['id']}</td><td class=l>{_constrained(m)}</td>"
                f"<td>{_pct(m.get('rate'))}</td><td>{_rate(b)} {_bar(b.get('rate'), '#c0392b')}</td>"
                f"<td>{_rate(a)} {_bar(a.get('rate'), '#2e86c1')}</td>"
                f"<td>{_mm(b.get('median'))}</td><td>{_mm(a.get('median'))}</td>"
                f"<td>{'fixed' if fixed else ('-' if a.get('rate') is None else 'not fixed')}</td>"
                + (f"<td class=l>{_need_cell(need.get(m['id']))}</td>" if need else "") + "</tr>")
        parts.append("<table><tr><th>mode</th><th>region</th><th>verified rate (search)</th>"
                     "<th>failing before</th><th>failing after</th><th>median error before</th>"
                     "<th>after</th><th>&lt; 20%?</th>"
                     + ("<th>what it needs alone: failing before &rarr; after</th>" if need else "")
                     + "</tr>" + "".join(rows) + "</table>")
        if need:
            parts.append("<p class=note>What it needs alone: the same recheck in the mode's need region (its box "
                         "with every constraint that does not matter alone released; docs/search.md, \"What the "
                         "failure needs\"): whether the fine-tune fixed the condition or only the box.</p>")
        if rc:
            first = rc["before"][0] if rc["before"] else {}
            n = first.get("n", 0) + first.get("excluded", 0)
            left_out = sum(x.get("excluded", 0) for x in rc["before"])
            parts.append(f"<p class=note>Rates: fresh uniform samples inside each mode's box ({n} per mode), the "
                         "same samples for both models, counted as the search counts them: over the plausible "
                         f"scenes only ({left_out} left out in all: a self-penetrating body, or too few joints "
                         "in view for the scoring); median error in the run's metric (mm).</p>")
    if rc and rc.get("earlier_rounds_after"):
        items = []
        for j, rows in rc["earlier_rounds_after"].items():
            still = sum(1 for x in rows if x["rate"] is not None and x["rate"] < FIXED_BELOW)
            items.append(f"<li>round {escape(j)}'s modes on this round's model: "
                         + ", ".join(f"mode {x['rank']} {_pct(x['rate'])}" for x in rows)
                         + f" &mdash; {still} of {len(rows)} below 20%</li>")
        parts.append("<p>Do earlier rounds' modes stay fixed?</p><ul>" + "".join(items) + "</ul>")
    ev = r.get("everyday")
    if ev:
        b, a = ev["before"].get("mpjpe_mm"), ev["after"].get("mpjpe_mm")
        change = f" ({100 * (a - b) / b:+.1f}%)" if a is not None and b else ""
        parts.append(f"<p>Held-out everyday (in-distribution) MPJPE on {ev.get('n', '?')} scenes: "
                     f"{_mm(b)} &rarr; <b>{_mm(a)}</b> mm{change}.</p>")
    if r.get("cpu"):
        parts.append("<p class=note>CPU seconds (this process and its reaped workers): "
                     + ", ".join(f"{escape(s)} {v:.0f}" for s, v in r["cpu"].items())
                     + "; wall seconds: " + ", ".join(f"{escape(s)} {v:.0f}" for s, v in r.get("wall", {}).items())
                     + ".</p>")
    return "\n".join(parts)


def loop_html(state: dict) -> str:
    c = state["config"]
    rounds = state.get("rounds", [])
    summary = []
    for r in rounds:
        ex = r.get("examine") or {}
        ev = r.get("everyday") or {}
        after = (r.get("recheck") or {}).get("after", [])
        fixed = sum(1 for x in after if x["rate"] is not None and x["rate"] < FIXED_BELOW)
        summary.append(f"<tr><td>{r['round']}</td><td>{len(ex.get('modes', []))}</td>"
                       f"<td>{fixed if after else '-'}</td>"
                       f"<td>{_mm((ev.get('before') or {}).get('mpjpe_mm'))}</td>"
                       f"<td>{_mm((ev.get('after') or {}).get('mpjpe_mm'))}</td></tr>")
    status = state.get("status", "running")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PoseExaminer loop</title>
{PAGE_STYLE}</head><body>
<h1>Examine, fine-tune, re-examine</h1>
<p>Model <code>{escape(str(c['model']))}</code>, {len(rounds)} of {c['rounds']} round(s) ({escape(status)});
search space <code>{escape(str(c['space']))}</code>, {c['budget']} evaluations per round ({escape(str(c['strategy']))});
failure: PA-MPJPE above {state.get('threshold', float('nan')):.1f} mm, decided once on the starting model;
{c['n']} scenes per fine-tuning set ({_set_mix(c)}), trainer
<code>{escape(str(c['trainer']))}</code>, seed {c['seed']}.</p>
<table><tr><th>round</th><th>modes found</th><th>fixed (&lt; 20%) after fine-tuning</th>
<th>everyday MPJPE before (mm)</th><th>after</th></tr>{''.join(summary)}</table>
{''.join(round_section(r) for r in rounds)}
<p class=note>Final model: <code>{escape(str(state.get('final_model', '-')))}</code>. Written by `examiner loop`
from loop.json.</p>
</body></html>
"""


def write_page(html: str, path: str | Path) -> Path:
    """Write a page atomically (a reader never sees half of it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html)
    tmp.replace(path)
    return path


def write_loop_html(state: dict, path: str | Path) -> Path:
    return write_page(loop_html(state), path)
