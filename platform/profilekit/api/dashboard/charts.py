"""Small server-rendered SVG charts: a line of values (a job's loss, a figure per minute), no script and
no chart library."""

from __future__ import annotations

from html import escape


def line(values: list[float | None], *, css: str, title: str, width: int = 240, height: int = 60,
         pad: int = 3) -> str:
    """A polyline over `values`, evenly spaced left to right, the largest drawn highest; None leaves a gap
    (each run of values is its own polyline). A flat series sits at the bottom."""
    known = [v for v in values if v is not None]
    top, bottom = (max(known), min(known)) if known else (1.0, 0.0)
    if css == "series":
        bottom = min(bottom, 0.0)  # figures per minute start from 0
    span = (top - bottom) or 1.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{pad + i * step:.1f},{pad + (top - v) / span * (height - 2 * pad):.1f}")
    runs = [r for r in runs if r]
    lines = "".join(f"<polyline fill='none' stroke='#36c' stroke-width='1.5' points='{' '.join(r)}'/>"
                    if len(r) > 1 else "<circle r='2' fill='#36c' cx='{}' cy='{}'/>".format(*r[0].split(","))
                    for r in runs)
    return (f"<svg class='{css}' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            f"<title>{escape(title)}</title>{lines}</svg>")


def loss_curve(losses: list[float]) -> str:
    """The training loss so far."""
    if len(losses) < 2:
        return "<span class='empty'>not yet</span>"
    return line(losses, css="loss", title=f"loss {losses[0]:.3f} → {losses[-1]:.3f} over {len(losses)} steps")


def series(name: str, values: list[float | None], fmt) -> str:
    """One figure of the last hour: a titled chart with its latest and largest value."""
    known = [v for v in values if v is not None]
    latest = fmt(values[-1]) if values and values[-1] is not None else "—"
    peak = fmt(max(known)) if known else "—"
    chart = line(values, css="series", title=f"{name}, one point per minute, last hour")
    return (f"<figure class='chart' data-series='{escape(name)}'><figcaption>{escape(name)}</figcaption>{chart}"
            f"<div class='chart-values'>now <b class='latest'>{latest}</b> · max {peak}</div></figure>")
