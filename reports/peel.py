"""An `examiner peel` on one HTML page (self-contained, no scripts): per stage, the space
searched (what earlier stages cut away), how much of it fails, the modes and what they
need, and why the peel stopped."""

from __future__ import annotations

from html import escape
from pathlib import Path

from reports.loop import PAGE_STYLE, _bar, _pct, write_page


def _share(stage: dict) -> str:
    u = stage.get("uniform")
    if not u or u.get("rate") is None:
        return "-"
    lo, hi = u.get("interval") or (None, None)
    ci = f" ({_pct(lo)}&ndash;{_pct(hi)})" if lo is not None else ""
    return f"{_pct(u['rate'])}{ci} of {u['n']} {_bar(u['rate'], '#c0392b')}"


def _spec(space: str) -> str:
    """A space spec for the page, breakable after each comma (a late stage's spec is
    longer than the page is wide)."""
    return ",<wbr>".join(escape(part) for part in space.split(","))


def need_words(d: dict) -> str:
    """A needed constraint's words for the page and the terminal: " (seen from above)",
    " (the poses: left hip flexion -23°, ...)" for a latent no posecode names, or ""."""
    return f" ({d['words']})" if d.get("words") else f" (the poses: {d['pose']})" if d.get("pose") else ""


def _needs(stage: dict) -> str:
    rate = {m["rank"]: m.get("rate") for m in stage["modes"]}
    items = []
    for f in stage["needs"]["failures"]:
        what = " and ".join(f"<b><code>{escape(d['dimension'])}</code> {escape(d['box'])}</b>{escape(need_words(d))}"
                            for d in f["dimensions"])
        rates = ", ".join(_pct(rate.get(r)) for r in f["modes"])
        items.append(f"<li>{what}: mode{'s' if len(f['modes']) > 1 else ''} {', '.join(map(str, f['modes']))} "
                     f"(failing {rates} of fresh samples)</li>")
    if stage["needs"]["nothing_alone"]:
        ranks = stage["needs"]["nothing_alone"]
        items.append(f"<li>no single constraint alone: mode{'s' if len(ranks) > 1 else ''} "
                     f"{', '.join(map(str, ranks))} (failing {', '.join(_pct(rate.get(r)) for r in ranks)})</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>No failure mode.</p>"


def factor_text(factors: list[dict], show: int = 2) -> str:
    """A stage's leading failure factors: "camera.elevation 38° to 50° (seen from above)
    47% of 200 (1.6x, confirmed; fails more often as far as 26°)"."""
    ranked = sorted((f for f in factors if f.get("rate") is not None), key=lambda f: -(f.get("ratio") or 0.0))
    return "; ".join(f"{f['label']}{' (' + f['words'] + ')' if f.get('words') else ''} {f['rate']:.0%} of {f['n']} "
                     f"({f['ratio']:.1f}x, {'confirmed' if f['confirmed'] else 'not confirmed'}"
                     f"{'; fails more often as far as ' + f['reaches'] if f.get('reaches') and f['reaches'] != f['label'] else ''})"
                     for f in ranked[:show] if f.get("ratio") is not None) or "none"


def _factors(stage: dict) -> str:
    """Where a stage still fails more often by its failure factors (tested on fresh samples
    against the stage's uniform scenes): the confirmed ones, or without a mode the two
    strongest."""
    factors = stage.get("factors") or []
    confirmed = [f for f in factors if f.get("confirmed")]
    if confirmed:
        return (f"<p>Confirmed failure factors (fresh samples against its uniform scenes): "
                f"{escape(factor_text(confirmed, show=len(confirmed)))}.</p>")
    if stage["modes"] or not factors:
        return ""
    return (f"<p>Without a mode, where this space still fails more often (failure factors, fresh samples against "
            f"its uniform scenes): {escape(factor_text(factors))}.</p>")


def _cut(stage: dict, nxt: dict | None) -> str:
    rest = stage.get("rest")
    if not rest:
        return ""
    went = " The next stage searches it." if nxt else ""
    why = []
    if rest["cut"]:
        many = len(rest["cut"]) > 1
        why.append(f"what mode{'s' if many else ''} {', '.join(map(str, rest['cut']))} need{'' if many else 's'}")
    if rest.get("factors"):
        many = len(rest["factors"]) > 1
        why.append(f"the confirmed failure factor{'s' if many else ''} {escape('; '.join(rest['factors']))}")
    return (f"<p>Cut away for the next stage: <code>{escape(', '.join(rest['entries']))}</code> "
            f"({' and '.join(why)}).{went}</p>")


def findings(state: dict) -> list[dict]:
    """What a peel found, stage by stage, in the order it was cut: each failure its modes
    need (one constraint alone or several together) and each confirmed failure factor, as
    {stage, dimensions, text, detail}. Modes needing nothing alone are not findings (they
    are counted per stage)."""
    out = []
    for s in state.get("stages", []):
        rate = {m["rank"]: m.get("rate") for m in s["modes"]}
        for f in s["needs"]["failures"]:
            text = " and ".join(f"{d['dimension']} {d['box']}{need_words(d)}" for d in f["dimensions"])
            rates = [rate.get(r) for r in f["modes"] if rate.get(r) is not None]
            span = "-" if not rates else _pct(min(rates)) if min(rates) == max(rates) else f"{_pct(min(rates))}-{_pct(max(rates))}"
            out.append({"stage": s["stage"], "text": text, "dimensions": [d["dimension"] for d in f["dimensions"]],
                        "detail": f"mode{'s' if len(f['modes']) > 1 else ''} {', '.join(map(str, f['modes']))}, "
                                  f"failing {span} of fresh samples"})
        u = (s.get("uniform") or {}).get("rate")
        for f in s.get("factors") or []:
            if not f.get("confirmed") or f.get("rate") is None:
                continue
            text = (f.get("reaches") or f["label"]) + (f" ({f['words']})" if f.get("words") else "")
            out.append({"stage": s["stage"], "text": text, "dimensions": [f.get("dimension") or f["label"].split()[0]],
                        "detail": f"failure factor: {_pct(f['rate'])} of {f['n']} fresh scenes"
                                  + (f" against {_pct(u)} of the stage's uniform ones" if u is not None else "")
                                  + (f" ({f['ratio']:.1f}x)" if f.get("ratio") else "")})
    return out


def _findings(state: dict) -> str:
    """The page's summary: the conditions on one dimension grouped by dimension (a gradual
    one is cut in slices, stage after stage), then the failures needing several
    constraints together."""
    found = findings(state)
    if not found:
        return "<p>No failure found yet.</p>"
    by_dim: dict[str, list[dict]] = {}
    for f in found:
        if len(f["dimensions"]) == 1:
            by_dim.setdefault(f["dimensions"][0], []).append(f)
    several = [f for f in found if len(f["dimensions"]) > 1]
    alone = sum(len(s["needs"]["nothing_alone"]) for s in state.get("stages", []))

    def item(f: dict, dim: str = "") -> str:
        text = f["text"][len(dim) + 1:] if dim and f["text"].startswith(dim + " ") else f["text"]
        return f"{escape(text)} <span class=note>(stage {f['stage']}: {escape(f['detail'])})</span>"

    items = [f"<li><code>{escape(d)}</code> " + "; ".join(item(f, d) for f in fs) + "</li>" for d, fs in by_dim.items()]
    items += [f"<li>together: {item(f)}</li>" for f in several]
    n = len(by_dim)
    return (f"<h2>What it found</h2><p>Conditions on {n} dimension{'s' if n != 1 else ''} alone (a gradual one is "
            f"cut in slices, stage after stage; two ends of one dimension are listed together)"
            f"{f', {len(several)} failure(s) needing several constraints together' if several else ''}"
            f"{f'; {alone} mode(s) needing no single constraint alone (see the stages)' if alone else ''}:</p>"
            f"<ol>{''.join(items)}</ol>")


def peel_html(state: dict) -> str:
    c = state["config"]
    stages = state.get("stages", [])
    rows, sections = [], []
    for i, s in enumerate(stages):
        nxt = stages[i + 1] if i + 1 < len(stages) else None
        report = (f' <a href="stage-{s["stage"]}/report.html">report</a>' if s.get("report") else "")
        rows.append(f"<tr><td>{s['stage']}</td><td class=l><code>{_spec(s['space'])}</code></td>"
                    f"<td>{_share(s)}</td><td>{len(s['modes'])}</td><td>{report}</td></tr>")
        sections.append(f"<h2>Stage {s['stage']}</h2><p>Space <code>{_spec(s['space'])}</code>: "
                        f"{s['evaluations']} evaluations ({s['failures']} failing); scenes drawn uniformly after "
                        f"the search fail {_share(s)}.{report}</p>{_needs(s)}{_factors(s)}{_cut(s, nxt)}")
    rule = state.get("threshold_rule")
    how = (f"decided once before stage 1 by the relative rule ({escape(str(rule.get('rule', '')))})"
           if isinstance(rule, dict) else "given")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PoseExaminer peel: {escape(str(c['model']))}</title>
{PAGE_STYLE}</head><body>
<h1>What fails, one failure after another</h1>
<p>Model <code>{escape(str(c['model']))}</code>; {c['budget']} evaluations per stage ({escape(str(c['strategy']))},
seed {c['seed']}); failure: {escape(str(c['metric']))} above {state.get('threshold', float('nan')):.1f}, {how}.
Each stage searches what the earlier ones left: the failures that need one constraint alone (tested on fresh
samples after each search) and its confirmed failure factors (conditions on one dimension) are cut from the
space, and the rest is searched again. Failure factors are tested on {c.get('factor_samples', 80)} fresh scenes
each against twice as many uniform ones; one at an end of a dimension is cut as far in as it still fails more
often.</p>
{_findings(state)}
<h2>Stages</h2>
<table><tr><th>stage</th><th class=l>space</th><th>fails (uniform scenes)</th><th>modes</th><th></th></tr>{''.join(rows)}</table>
<p><b>Ended:</b> {escape(str(state.get('ended', 'running')))}.</p>
{''.join(sections)}
<p class=note>Written by `examiner peel` from peel.json; each stage is a run folder with its own report.</p>
</body></html>
"""


def write_peel_html(state: dict, path: str | Path) -> Path:
    return write_page(peel_html(state), path)
