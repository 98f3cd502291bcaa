"""Bytes and times as people read them; the exact value stays in the cell's title (and a data- attribute)."""

from __future__ import annotations

from datetime import datetime
from html import escape


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt_seconds(seconds: float | None) -> str:
    """A duration or an age: 850 ms, 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    seconds = round(seconds)
    for size, unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if seconds >= size:
            rest = (seconds % size) // small
            return f"{seconds // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    return f"{seconds} s"


def bytes_cell(n: int | None, element_id: str = "") -> str:
    """Readable bytes, the exact count in data-bytes and the title."""
    if n is None:
        return "—"
    ident = f" id='{element_id}'" if element_id else ""
    return f"<span class='bytes'{ident} data-bytes='{n}' title='{n:,} bytes'>{fmt_bytes(n)}</span>"


def time_cell(moment: datetime | None, now: datetime) -> str:
    """A moment as its age ("3 min ago"), the UTC time in the title."""
    if moment is None:
        return "—"
    stamp, ago = moment.strftime("%Y-%m-%d %H:%M:%S UTC"), fmt_seconds((now - moment).total_seconds())
    return f"<time datetime='{moment.isoformat()}' title='{escape(stamp)}'>{ago} ago</time>"
