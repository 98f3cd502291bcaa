"""The LaMP classification tasks read from their published files: a user's profile items are its
training rows, its question is what it is asked, and LaMP-1's unlabelled papers become a signal."""

import json

import pytest

from profilekit.data import DataError, parse_lamp, read_lamp
from profilekit.data.lamp import lamp_output
from tests.conftest import REPO, SHARED

LAMP = REPO / "tests" / "data" / "lamp"


def test_each_task_is_recognised_from_its_questions():
    assert read_lamp(LAMP / "LaMP_1_dev_questions.json").task == "LaMP_1"
    assert read_lamp(LAMP / "LaMP_2_dev_questions.json").task == "LaMP_2M"
    assert read_lamp(LAMP / "LaMP_3_dev_questions.json").task == "LaMP_3"
    assert read_lamp(SHARED / "data" / "lamp2-format-sample" / "LaMP_22_dev_questions.json").task == "LaMP_2N"


def test_rating_items_train_and_the_question_is_asked_with_its_gold():
    data = read_lamp(LAMP / "LaMP_3_dev_questions.json")
    raw = json.loads((LAMP / "LaMP_3_dev_questions.json").read_text())
    assert len(data.rows) == sum(len(q["profile"]) for q in raw)
    assert {r.label for r in data.rows} == {"1", "2", "3", "4", "5"}
    first = data.questions[0]
    assert (first.id, first.user, first.gold) == ("300", "lamp-300", "1")
    assert first.text == "The handle snapped the first time I used it."  # the review, without the prompt
    assert not any(r.text == first.text for r in data.rows)
    assert data.answer(first, [{"1": 0.7, "3": 0.3}]) == "1"


def test_movie_tags_and_news_categories_become_labels():
    movies = read_lamp(LAMP / "LaMP_2_dev_questions.json")
    assert {r.label for r in movies.rows if r.author == "lamp-201"} == {"fantasy", "romance"}
    assert movies.questions[1].text.startswith("A princess escapes")


def test_citation_papers_are_told_apart_from_other_authors_papers():
    data = read_lamp(LAMP / "LaMP_1_dev_questions.json")
    raw = json.loads((LAMP / "LaMP_1_dev_questions.json").read_text())
    for question, item in zip(data.questions, raw):
        mine = [r.text for r in data.rows if r.author == question.user and r.label == "mine"]
        other = [r.text for r in data.rows if r.author == question.user and r.label == "other"]
        assert mine == [p["title"] for p in item["profile"]] and len(other) == len(mine)
        assert not set(other) & set(mine) and set(other) <= {r.text for r in data.rows if r.label == "mine"}
    first = data.questions[0]
    assert first.text == "Graph neural networks for molecule property prediction"
    assert first.options == ("A graph attention model for drug discovery", "Consistent hashing for web caches")
    assert data.texts_of(first) == list(first.options)
    assert data.answer(first, [{"mine": 0.2}, {"mine": 0.9}]) == "[2]"
    again = read_lamp(LAMP / "LaMP_1_dev_questions.json")
    assert again.rows == data.rows  # the other authors' papers are drawn with a seed


def test_malformed_lamp_files_are_refused_with_a_reason():
    q1 = (LAMP / "LaMP_1_dev_questions.json").read_text()
    with pytest.raises(DataError, match="at least two users"):
        parse_lamp(json.dumps(json.loads(q1)[:1]).encode())
    mixed = json.loads(q1)[:1] + json.loads((LAMP / "LaMP_3_dev_questions.json").read_text())[:1]
    with pytest.raises(DataError, match="another task"):
        parse_lamp(json.dumps(mixed).encode())
    with pytest.raises(DataError, match="non-empty list"):
        parse_lamp(b"[]")
    with pytest.raises(DataError, match="not a LaMP classification question"):
        parse_lamp(json.dumps([{"id": "1", "input": "Generate a headline for the following article: x",
                                "profile": []}]).encode())
    with pytest.raises(DataError, match="not a LaMP questions/outputs pair"):
        parse_lamp(b'[{"nope": 1}]')


def test_predictions_take_the_shape_lamps_evaluator_reads():
    assert lamp_output("LaMP_2M", {"200": "sci-fi"}) == {"task": "LaMP_2", "golds": [{"id": "200", "output": "sci-fi"}]}
    assert lamp_output("LaMP_3", {"300": "4"})["task"] == "LaMP_3"
