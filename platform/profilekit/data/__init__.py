"""Data on the ground floor (no torch): one `Row` type and its readers (JSONL, CSV, JSON, the LaMP
tasks' published files), a profile's examples and their split, and where the shared sample data lies
beside a checkout."""

from pathlib import Path

from profilekit.data.lamp import LampData, Question, parse_lamp, read_lamp
from profilekit.data.profiles import (
           MIN_ROWS,
           ProfileData,
           Split,
           profile_seed,
           profiles_by_author,
           sample_rows,
           split_profile,
           validate_profile,
)
from profilekit.data.rows import DataError, Row, parse_rows, read_rows

# ../shared/data/news-authors beside a checkout of this repository (the demo's and benchmarks' default)
NEWS_AUTHORS = Path(__file__).resolve().parents[4] / "shared" / "data" / "news-authors" / "news_authors.jsonl"

__all__ = ["MIN_ROWS", "NEWS_AUTHORS", "DataError", "LampData", "ProfileData", "Question", "Row", "Split", "parse_lamp",
           "parse_rows", "profile_seed", "profiles_by_author", "read_lamp", "read_rows", "sample_rows", "split_profile",
           "validate_profile"]
