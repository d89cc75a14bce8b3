"""Hand-made inline SVG charts (no plotting library, no script): every function returns
one ``<svg>`` string with all text escaped, sized in CSS pixels."""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

import numpy as np

# Viridis at 9 stops (matplotlib's colormap, sampled), interpolated linearly.
_VIRIDIS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
], dtype=np.float64)

FAIL = "#d62728"
PASS = "#8c8c8c"
LINE = "#1f77b4"
INK = "#333"


def viridis(t: np.ndarray) -> list[str]:
    """(N,) values in [0, 1] -> hex colours; NaN -> grey."""
    t = np.asarray(t, dtype=np.float64)
    out = []
    for x in t:
        if not math.isfinite(x):
            out.append("#bbbbbb")
            continue
        p = min(max(x, 0.0), 1.0) * (len(_VIRIDIS) - 1)
        i = min(int(p), len(_VIRIDIS) - 2)
        c = _VIRIDIS[i] + (p - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])
        out.append("#%02x%02x%02x" % tuple(int(round(v)) for v in c))
    return out


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 10, cls: str = "", extra: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}"{c}{extra}>{escape(str(s))}</text>'


def _svg(w: int, h: int, body: Sequence[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    ticks = []
    x = start
    while x <= hi + 1e-9 * step and len(ticks) < 20:
        ticks.append(round(x, 10))
        x += step
    return ticks


def _fmt(v: float) -> str:
    if abs(v) >= 1000 or (abs(v) < 0.01 and v != 0):
        return f"{v:.2g}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.2g}"


class Axes:
    """Linear data -> pixel mapping for a plot area with margins."""

    def __init__(self, w: int, h: int, xlim, ylim, margin=(34, 8, 8, 30)) -> None:
        self.w, self.h = w, h
        self.left, self.top, self.right, self.bottom = margin
        self.x0, self.x1 = xlim
        self.y0, self.y1 = ylim
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1.0

    def x(self, v):
        return self.left + (np.asarray(v, float) - self.x0) / (self.x1 - self.x0) * (self.w - self.left - self.right)

    def y(self, v):
        return self.h - self.bottom - (np.asarray(v, float) - self.y0) / (self.y1 - self.y0) * (self.h - self.top - self.bottom)

    def frame(self, xlabel: str = "", ylabel: str = "", xticks=True, yticks=True, xfmt=_fmt) -> list[str]:
        out = [
            f'<rect x="{self.left}" y="{self.top}" width="{self.w - self.left - self.right}" '
            f'height="{self.h - self.top - self.bottom}" fill="none" stroke="#ccc"/>'
        ]
        if yticks:
            for t in nice_ticks(self.y0, self.y1, 4):
                yy = float(self.y(t))
                out.append(f'<line x1="{self.left - 3}" x2="{self.left}" y1="{_f(yy)}" y2="{_f(yy)}" stroke="#999"/>')
                out.append(_text(self.left - 5, yy + 3, _fmt(t), "end", 9))
        if xticks:
            for t in nice_ticks(self.x0, self.x1, 5):
                xx = float(self.x(t))
                out.append(f'<line x1="{_f(xx)}" x2="{_f(xx)}" y1="{self.h - self.bottom}" y2="{self.h - self.bottom + 3}" stroke="#999"/>')
                out.append(_text(xx, self.h - self.bottom + 13, xfmt(t), "middle", 9))
        if xlabel:
            out.append(_text((self.left + self.w - self.right) / 2, self.h - 5, xlabel, "middle", 10))
        if ylabel:
            out.append(
                f'<text transform="translate(10,{_f((self.top + self.h - self.bottom) / 2)}) rotate(-90)" '
                f'font-size="10" text-anchor="middle">{escape(ylabel)}</text>'
            )
        return out


def histogram(values: Sequence[float], threshold: float | None, unit: str = "", w: int = 300, h: int = 120,
              bins: int = 20, label: str = "error distribution") -> str:
    """Histogram of finite values with the failure threshold as a dashed line; bars above
    the threshold in red."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return _svg(w, 40, [_text(4, 24, "no finite values", size=11)], label)
    lo, hi = float(v.min()), float(v.max())
    if threshold is not None and math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.03 * (hi - lo)
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    counts, _ = np.histogram(v, edges)
    ax = Axes(w, h, (edges[0], edges[-1]), (0, max(int(counts.max()), 1) * 1.1), margin=(30, 8, 8, 30))
    body = ax.frame(xlabel=unit, ylabel="count")
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c == 0:
            continue
        x0, x1 = float(ax.x(a)), float(ax.x(b))
        y = float(ax.y(c))
        col = FAIL if threshold is not None and 0.5 * (a + b) > threshold else PASS
        body.append(f'<rect x="{_f(x0 + 0.5)}" y="{_f(y)}" width="{_f(max(x1 - x0 - 1, 0.5))}" '
                    f'height="{_f(ax.h - ax.bottom - y)}" fill="{col}"><title>{int(c)} in [{_fmt(a)}, {_fmt(b)}]</title></rect>')
    if threshold is not None and math.isfinite(threshold):
        tx = float(ax.x(threshold))
        body.append(f'<line x1="{_f(tx)}" x2="{_f(tx)}" y1="{ax.top}" y2="{ax.h - ax.bottom}" stroke="{INK}" stroke-dasharray="4 3"/>')
        body.append(_text(tx + 3, ax.top + 10, f"threshold {_fmt(threshold)}", size=9))
    return _svg(w, h, body, label)


def scatter(x: np.ndarray, y: np.ndarray, failed: np.ndarray, threshold: float | None, w: int = 260, h: int = 150,
            xlim=None, xlabel: str = "", ylabel: str = "", xfmt=_fmt, median_line: bool = True,
            max_points: int = 600, label: str = "scatter") -> str:
    """y against x, failing points red, with the binned median of y and the threshold."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, failed = x[ok], y[ok], np.asarray(failed, bool)[ok]
    if x.size == 0:
        return _svg(w, 40, [_text(4, 24, "no data", size=11)], label)
    if x.size > max_points:  # deterministic thinning keeps the first evaluations of each stride
        idx = np.linspace(0, x.size - 1, max_points).astype(int)
        xs, ys, fs = x[idx], y[idx], failed[idx]
    else:
        xs, ys, fs = x, y, failed
    xlim = xlim or (float(x.min()), float(x.max()))
    ymax = float(max(y.max(), threshold or 0.0)) * 1.05
    ax = Axes(w, h, xlim, (min(0.0, float(y.min())), ymax))
    body = ax.frame(xlabel=xlabel, ylabel=ylabel, xfmt=xfmt)
    px, py = ax.x(xs), ax.y(ys)
    for a, b, f in zip(px, py, fs):
        body.append(f'<circle cx="{_f(a)}" cy="{_f(b)}" r="1.6" fill="{FAIL if f else PASS}" fill-opacity="0.55"/>')
    if median_line and x.size >= 10:
        edges = np.linspace(xlim[0], xlim[1], 13)
        pts = []
        for a, b in zip(edges[:-1], edges[1:]):
            m = (x >= a) & (x <= b)
            if m.sum() >= 3:
                pts.append((0.5 * (a + b), float(np.median(y[m]))))
        if len(pts) >= 2:
            d = " ".join(f"{_f(float(ax.x(a)))},{_f(float(ax.y(b)))}" for a, b in pts)
            body.append(f'<polyline points="{d}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    if threshold is not None and math.isfinite(threshold):
        ty = float(ax.y(threshold))
        body.append(f'<line x1="{ax.left}" x2="{ax.w - ax.right}" y1="{_f(ty)}" y2="{_f(ty)}" stroke="{INK}" stroke-dasharray="4 3"/>')
    return _svg(w, h, body, label)


def sparkbars(rates: Sequence[float | None], counts: Sequence[int], w: int = 150, h: int = 26,
              label: str = "failure rate by bin") -> str:
    """Failure rate per bin as bars (0..1 full height); empty bins as a dot."""
    n = max(len(rates), 1)
    bw = w / n
    body = [f'<rect x="0" y="0" width="{w}" height="{h}" fill="#f4f4f4"/>']
    for i, (r, c) in enumerate(zip(rates, counts)):
        if r is None or c == 0:
            body.append(f'<circle cx="{_f((i + 0.5) * bw)}" cy="{h - 2}" r="1" fill="#bbb"/>')
            continue
        bh = max(r * (h - 2), 1.0 if r > 0 else 0.0)
        body.append(f'<rect x="{_f(i * bw + 0.5)}" y="{_f(h - bh)}" width="{_f(bw - 1)}" height="{_f(bh)}" '
                    f'fill="{FAIL}"><title>{r:.0%} of {c} fail</title></rect>')
    return _svg(w, h, body, label)


def evaluation_map(xy: np.ndarray, colour_values: np.ndarray, vmin: float, vmax: float,
                   polygons: Sequence[tuple[str, np.ndarray]], w: int = 560, h: int = 420, axis_labels=("PC 1", "PC 2"),
                   label: str = "map of evaluations") -> str:
    """All evaluations (N, 2) in 2D coloured by value (viridis, highest drawn on top),
    each (label, polygon (M, 2)) outlined and labelled."""
    xy = np.asarray(xy, float)
    allpts = [xy] + [p for _, p in polygons if len(p)]
    stack = np.concatenate(allpts, 0) if allpts else np.zeros((1, 2))
    lo, hi = stack.min(0), stack.max(0)
    pad = 0.04 * np.maximum(hi - lo, 1e-6)
    ax = Axes(w, h, (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]), margin=(36, 8, 8, 28))
    body = ax.frame(xlabel=axis_labels[0], ylabel=axis_labels[1])
    t = (np.asarray(colour_values, float) - vmin) / max(vmax - vmin, 1e-9)
    cols = viridis(t)
    px, py = ax.x(xy[:, 0]), ax.y(xy[:, 1])
    order = np.argsort(np.nan_to_num(np.asarray(colour_values, float), nan=-np.inf), kind="stable")
    for i in order:  # high values drawn last, on top
        body.append(f'<circle cx="{_f(px[i])}" cy="{_f(py[i])}" r="2.2" fill="{cols[i]}"/>')
    for name, poly in polygons:
        if len(poly) < 2:
            continue
        d = " ".join(f"{_f(float(ax.x(p[0])))},{_f(float(ax.y(p[1])))}" for p in poly)
        body.append(f'<polygon points="{d}" fill="none" stroke="#000" stroke-width="1.5" stroke-dasharray="5 2"/>')
        top = poly[np.argmax(poly[:, 1])]
        body.append(_text(float(ax.x(top[0])), float(ax.y(top[1])) - 3, name, "middle", 11, extra=' font-weight="bold"'))
    return _svg(w, h, body, label)


def colourbar(vmin: float, vmax: float, unit: str, w: int = 260, h: int = 34, threshold: float | None = None) -> str:
    n = 40
    body = []
    if threshold is not None and vmin < threshold < vmax:
        tx = 10 + (threshold - vmin) / (vmax - vmin) * (w - 20)
        body.append(f'<line x1="{_f(tx)}" x2="{_f(tx)}" y1="1" y2="17" stroke="{INK}" stroke-width="1.5"/>')
    cols = viridis(np.linspace(0, 1, n))
    for i, c in enumerate(cols):
        body.append(f'<rect x="{_f(10 + i * (w - 20) / n)}" y="4" width="{_f((w - 20) / n + 0.5)}" height="10" fill="{c}"/>')
    body.append(_text(10, 28, _fmt(vmin), "start", 9))
    body.append(_text(w - 10, 28, _fmt(vmax), "end", 9))
    body.append(_text(w / 2, 28, unit, "middle", 9))
    return _svg(w, h, body, "colour scale")


def lines(series: Sequence[tuple[str, np.ndarray, np.ndarray, str]], w: int = 560, h: int = 220,
          xlabel: str = "", ylabel: str = "", label: str = "progress", step: bool = False) -> str:
    """Line chart; series: (name, x, y, colour). A legend sits top-left."""
    xs = [np.asarray(s[1], float) for s in series if len(s[1])]
    ys = [np.asarray(s[2], float) for s in series if len(s[2])]
    if not xs:
        return _svg(w, 40, [_text(4, 24, "no data", size=11)], label)
    xmax = max(float(x.max()) for x in xs)
    ymax = max(float(y.max()) for y in ys)
    ax = Axes(w, h, (0, max(xmax, 1.0)), (0, max(ymax * 1.08, 1.0)), margin=(40, 8, 8, 28))
    body = ax.frame(xlabel=xlabel, ylabel=ylabel)
    for k, (name, x, y, col) in enumerate(series):
        x, y = np.asarray(x, float), np.asarray(y, float)
        if len(x) == 0:
            continue
        if len(x) > 800:
            idx = np.unique(np.linspace(0, len(x) - 1, 800).astype(int))
            x, y = x[idx], y[idx]
        if step:
            pts = []
            for i in range(len(x)):
                if i:
                    pts.append((x[i], y[i - 1]))
                pts.append((x[i], y[i]))
            pts.append((xmax, y[-1]))
        else:
            pts = list(zip(x, y))
        d = " ".join(f"{_f(float(ax.x(a)))},{_f(float(ax.y(b)))}" for a, b in pts)
        body.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="2"/>')
        body.append(f'<rect x="{ax.left + 8}" y="{ax.top + 6 + 14 * k}" width="10" height="3" fill="{col}"/>')
        body.append(_text(ax.left + 22, ax.top + 10 + 14 * k, name, size=10))
    return _svg(w, h, body, label)


def hbars(labels: Sequence[str], values: Sequence[Sequence[float | None]], colours: Sequence[str],
          legend: Sequence[str], unit: str, w: int = 560, label: str = "per-joint error") -> str:
    """Horizontal grouped bars: one row per label, one bar per series."""
    rows = len(labels)
    k = max(len(values), 1)
    row_h = 6 + 9 * k
    h = 30 + rows * row_h + 24
    finite = [v for s in values for v in s if v is not None and math.isfinite(v)]
    vmax = max(finite, default=1.0) * 1.1 or 1.0
    left = 120
    ax = Axes(w, h, (0, vmax), (0, 1), margin=(left, 12, 24, 24))
    body = ax.frame(xlabel=unit, yticks=False)
    for j, (name, col) in enumerate(zip(legend, colours)):
        body.append(f'<rect x="{left + 8 + 130 * j}" y="6" width="10" height="10" fill="{col}"/>')
        body.append(_text(left + 22 + 130 * j, 15, name, size=10))
    for i, name in enumerate(labels):
        y0 = 24 + 4 + i * row_h
        body.append(_text(left - 6, y0 + row_h / 2 + 2, name, "end", 10))
        for j, s in enumerate(values):
            v = s[i]
            if v is None or not math.isfinite(v):
                continue
            x1 = float(ax.x(v))
            body.append(f'<rect x="{left}" y="{_f(y0 + j * 9)}" width="{_f(max(x1 - left, 0.5))}" height="8" '
                        f'fill="{colours[j]}"><title>{escape(str(name))}: {_fmt(v)} {escape(unit)}</title></rect>')
    return _svg(w, h, body, label)
