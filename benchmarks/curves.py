"""Curves a benchmark measures, written for a person: a Markdown table and an SVG line chart per curve.

Files go to OUTPUT_DIR (build/benchmarks in the work tree, outside git's view; BENCH_OUTPUT_DIR moves
it), and the table is printed as `#` lines too, so `make bench`'s output carries it. The chart is drawn
by hand in SVG (stdlib only: the benchmarks need no plotting package).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from benchmarks.measure import PROJECT_ROOT

OUTPUT_DIR = Path(os.environ.get("BENCH_OUTPUT_DIR") or PROJECT_ROOT / "build" / "benchmarks")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
WIDTH, HEIGHT, MARGIN = 520, 320, 56


def table(columns: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _chart(title: str, xlabel: str, ylabel: str, xs: list[float], series: dict[str, list[float]],
           left: int, top: int) -> list[str]:
    """One chart in a WIDTH x HEIGHT box at (left, top): a line and dots per series, on axes from 0."""
    x_max = max(xs) or 1
    y_max = max((y for ys in series.values() for y in ys), default=0) * 1.1 or 1
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    x0, y0 = left + MARGIN, top + HEIGHT - MARGIN

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + plot_w * x / x_max, y0 - plot_h * y / y_max

    out = [f'<text x="{left + WIDTH / 2}" y="{top + 22}" text-anchor="middle" font-weight="bold">'
           f"{html.escape(title)}</text>",
           f'<line x1="{x0}" y1="{y0}" x2="{x0 + plot_w}" y2="{y0}" stroke="black"/>',
           f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - plot_h}" stroke="black"/>',
           f'<text x="{x0 + plot_w / 2}" y="{y0 + 36}" text-anchor="middle">{html.escape(xlabel)}</text>',
           f'<text x="{left + 14}" y="{y0 - plot_h / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {left + 14} {y0 - plot_h / 2})">{html.escape(ylabel)}</text>']
    for x in xs:
        px, _ = at(x, 0)
        out.append(f'<text x="{px}" y="{y0 + 16}" text-anchor="middle">{x:g}</text>')
    for step in range(5):
        y = y_max * step / 4
        _, py = at(0, y)
        out.append(f'<text x="{x0 - 6}" y="{py + 4}" text-anchor="end">{y:.3g}</text>')
        out.append(f'<line x1="{x0}" y1="{py}" x2="{x0 + plot_w}" y2="{py}" stroke="#ddd"/>')
    for index, (name, ys) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join("{:.1f},{:.1f}".format(*at(x, y)) for x, y in zip(xs, ys))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += ['<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>'.format(*at(x, y), colour) for x, y in zip(xs, ys)]
        out.append(f'<text x="{x0 + 8}" y="{top + 40 + 16 * index}" fill="{colour}">{html.escape(name)}</text>')
    return out


def write(name: str, title: str, charts: list[dict], columns: list[str], rows: list[list], note: str) -> Path:
    """Write OUTPUT_DIR/<name>.svg (the charts side by side) and <name>.md (the table and note), print the
    table as comment lines; the SVG's path. Each chart: {title, xlabel, ylabel, xs, series}."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    body = []
    for index, chart in enumerate(charts):
        body += _chart(left=index * WIDTH, top=20, **chart)
    svg = OUTPUT_DIR / f"{name}.svg"
    svg.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH * len(charts)}" height="{HEIGHT + 40}" '
        f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
        f'<text x="8" y="14" font-size="11">{html.escape(title)}</text>\n' + "\n".join(body) + "\n</svg>\n")
    text = table(columns, rows)
    (OUTPUT_DIR / f"{name}.md").write_text(f"# {title}\n\n{text}\n\n{note}\n")
    for line in [title, *text.splitlines()]:
        print(f"# {line}", flush=True)
    print(f"# plot: {svg}", flush=True)
    return svg
