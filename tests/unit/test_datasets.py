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


def test_lamp2_news_items_are_the_training_rows_and_questions_are_not():
    rows = read_rows(LAMP2 / "LaMP_22_dev_questions.json")
    questions = json.loads((LAMP2 / "LaMP_22_dev_questions.json").read_text())
    assert len(rows) == sum(len(q["profile"]) for q in questions)  # a question is asked, never trained on
    assert {r.author for r in rows} == {f"lamp-{q['id']}" for q in questions}
    first = questions[0]["profile"][0]
    assert rows[0].text == f"{first['title']} {first['text']}" and rows[0].label == first["category"]
