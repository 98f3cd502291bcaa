"""Upload rows the store could not keep are refused up front, by row number and reason, on every
backend alike (PostgreSQL refuses NUL characters and over-long names; no UTF-8 store takes a lone
surrogate, which JSON can escape as "\\ud800")."""

from __future__ import annotations

import json

import pytest

from profilekit.data import DataError, parse_rows


def test_unstorable_rows_are_named_and_nothing_is_kept():
    rows = [{"text": "fine", "category": "sports", "author": "ann"},
            {"text": "nul \x00 inside", "category": "sports", "author": "ann"},
            {"text": "fine", "category": "c" * 201, "author": "ann"},
            {"text": "half a pair \ud800", "category": "sports", "author": "ann"},
            {"text": "fine", "category": "sports", "author": "a" * 201}]
    body = "\n".join(json.dumps(r) for r in rows).encode()  # json escapes the surrogate as \ud800
    with pytest.raises(DataError) as refused:
        parse_rows(body, "application/x-ndjson", need_author=True)
    reasons = {e["row"]: e["reason"] for e in refused.value.errors}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "NUL" in reasons[2] and "category is longer than 200" in reasons[3]
    assert "lone surrogate" in reasons[4] and "author is longer than 200" in reasons[5]


def test_names_at_the_limit_are_kept():
    body = json.dumps([{"text": "t \u00e9\U0001F600", "category": "c" * 200}]).encode()  # a full pair is fine
    [row] = parse_rows(body, "application/json", need_author=False)
    assert row.label == "c" * 200 and row.text.endswith("\U0001F600")
