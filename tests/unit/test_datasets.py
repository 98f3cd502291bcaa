import json

import pytest

from profilekit.data import DataError, profiles_by_author, read_rows
from tests.conftest import NEWS, SHARED

LAMP2 = SHARED / "data" / "lamp2-format-sample"


def test_news_authors_jsonl_gives_one_profile_per_author_with_enough_rows():
    rows = read_rows(NEWS)
    assert len(rows) == 7637
    profiles = profiles_by_author(rows, min_rows=20)
    assert 40 <= len(profiles) <= 70  # the data's README: about 55 authors with at least 20 rows
    assert all(len(p.texts) >= 20 and len(p.texts) == len(p.labels) for p in profiles)
    assert len({p.key for p in profiles}) == len(profiles)


def test_csv_rows_and_row_numbers_in_errors(tmp_path):
    good = tmp_path / "rows.csv"
    good.write_text("text,category,author\nhello world,POLITICS,Ann\nbye,SPORTS,Ann\n")
    assert [r.label for r in read_rows(good)] == ["POLITICS", "SPORTS"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,category,author\nhello,POLITICS,Ann\n,SPORTS,Ann\n")
    with pytest.raises(DataError, match="row 3: text is missing or empty"):
        read_rows(bad)


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "a", "category": "B", "author": "C"}) + "\n{not json\n")
    with pytest.raises(DataError, match="row 2: not JSON"):  # JSONL rows are its lines
        read_rows(path)


def test_lamp2_questions_and_outputs_pair_imports_one_profile_per_question():
    rows = read_rows(LAMP2 / "LaMP_22_dev_questions.json")
    questions = json.loads((LAMP2 / "LaMP_22_dev_questions.json").read_text())
    history = sum(len(q["profile"]) for q in questions)
    golds = json.loads((LAMP2 / "LaMP_22_dev_outputs.json").read_text())["golds"]
    assert len(rows) == history + len(golds)
    assert {r.author for r in rows} == {f"lamp2-{q['id']}" for q in questions}
