"""The LaMP classification tasks in their published files: `*_questions.json` (a list of questions,
each with its user's `profile` items) and `*_outputs.json` ({"task": …, "golds": [{"id", "output"}]}).

Each question is one user (profile `lamp-<id>`): the profile's items are its training rows and the
question is what it is asked.

- LaMP_1 (citation): which of two references relates to the author's paper. The items are the
  user's papers: their titles are rows labelled `mine`, and as many titles of other users' papers
  rows labelled `other`; the answer is the reference scored more `mine`, `[1]` or `[2]`.
- LaMP_2 news: an article's category; items: title + text → category.
- LaMP_2 movies: a movie's tag (15 tags); items: description → tag.
- LaMP_3 (product rating): a review's score, 1 … 5; items: text → score.

Imports no torch."""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from profilekit.data.rows import DataError, Row, rows_from_records

TASKS = ("LaMP_1", "LaMP_2N", "LaMP_2M", "LaMP_3")
MINE, OTHER = "mine", "other"  # LaMP_1's derived labels
_REFERENCES = re.compile(r'\[1\]:\s*"(?P<first>.*)"\s*\[2\]:\s*"(?P<second>.*)"\s*$', re.S)
_TITLE = re.compile(r'paper with the title "(?P<title>.*?)", which reference', re.S)


@dataclass(frozen=True)
class Question:
    id: str
    user: str  # the profile it is asked of
    text: str  # what is classified: the article, the movie, the review (LaMP_1: the author's paper title)
    options: tuple[str, ...] = ()  # LaMP_1: the two reference titles, [1] then [2]
    gold: str | None = None


@dataclass
class LampData:
    task: str  # one of TASKS
    rows: list[Row]  # every user's training rows (author = the user)
    questions: list[Question]

    def answer(self, question: Question, scores: list[dict[str, float]]) -> str:
        """The task's answer from the user's label scores of each text of `texts_of(question)`."""
        if self.task == "LaMP_1":
            return "[1]" if scores[0].get(MINE, 0.0) >= scores[1].get(MINE, 0.0) else "[2]"
        return max(scores[0], key=scores[0].get)

    def texts_of(self, question: Question) -> list[str]:
        """What the profile scores to answer `question`: its text, or LaMP_1's two references."""
        return list(question.options) if self.task == "LaMP_1" else [question.text]


def detect_task(question_input: str) -> str:
    """The task a question's input text belongs to (LaMP's prompts name it)."""
    lowered = question_input.lower()
    if "which reference is related" in lowered:
        return "LaMP_1"
    if "categories:" in lowered and "article:" in lowered:
        return "LaMP_2N"
    if "tags:" in lowered and "description:" in lowered:
        return "LaMP_2M"
    if "score of the following review" in lowered:
        return "LaMP_3"
    raise DataError(f"not a LaMP classification question (LaMP_1, LaMP_2, LaMP_3): {question_input[:80]!r}")


def _after(text: str, marker: str) -> str:
    at = text.lower().rfind(marker)
    return text[at + len(marker):].strip() if at >= 0 else text.strip()


def _question(task: str, item: dict, gold: str | None) -> Question:
    text, user = item["input"], f"lamp-{item['id']}"
    if task == "LaMP_1":
        refs, title = _REFERENCES.search(text), _TITLE.search(text)
        if refs is None or title is None:
            raise DataError(f"LaMP_1 question {item['id']}: no [1]: \"…\" [2]: \"…\" references in its input")
        return Question(str(item["id"]), user, title["title"], (refs["first"], refs["second"]), gold)
    marker = {"LaMP_2N": "article:", "LaMP_2M": "description:", "LaMP_3": "review:"}[task]
    return Question(str(item["id"]), user, _after(text, marker), (), gold)


def _item_record(task: str, entry: dict, user: str) -> dict:
    if task == "LaMP_2N":
        text = " ".join(part for part in (entry.get("title"), entry.get("text")) if part)
        return {"text": text, "category": entry.get("category"), "author": user}
    if task == "LaMP_2M":
        return {"text": entry.get("description"), "category": entry.get("tag"), "author": user}
    if task == "LaMP_3":
        score = entry.get("score")
        return {"text": entry.get("text"), "category": None if score is None else str(score).strip(), "author": user}
    return {"text": entry.get("title"), "category": MINE, "author": user}  # LaMP_1: the user's own papers


def parse_lamp(questions: bytes, outputs: bytes | None = None, *, seed: int = 0) -> LampData:
    """A LaMP questions file (and its outputs, for the golds) → the users' training rows and questions.
    LaMP_1's `other` rows are titles of other users' papers, as many as the user's own, drawn with `seed`."""
    try:
        items = json.loads(questions.decode("utf-8"))
        golds = {str(g["id"]): str(g["output"]) for g in json.loads(outputs.decode("utf-8"))["golds"]} \
            if outputs else {}
        if not isinstance(items, list) or not items:
            raise DataError("the questions file must hold a non-empty list of questions")
        task = detect_task(items[0]["input"])
        records, asked, number = [], [], 0
        for item in items:
            if detect_task(item["input"]) != task:
                raise DataError(f"question {item['id']} is of another task than the first ({task})")
            user = f"lamp-{item['id']}"
            for entry in item.get("profile", []):
                number += 1
                records.append((number, _item_record(task, entry, user)))
            asked.append(_question(task, item, golds.get(str(item["id"]))))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not a LaMP questions/outputs pair: {exc!r}", [{"row": 0, "reason": str(exc)}]) from exc
    rows = rows_from_records(records, need_author=True)
    if task == "LaMP_1":
        rows = _with_other_papers(rows, seed)
    return LampData(task, rows, asked)


def _with_other_papers(rows: list[Row], seed: int) -> list[Row]:
    """Each user's own paper titles (`mine`) and as many other users' titles (`other`)."""
    users = sorted({r.author for r in rows})
    if len(users) < 2:
        raise DataError("LaMP_1 needs at least two users: a user's papers are told apart from other users'")
    out = []
    for user in users:
        mine = [r for r in rows if r.author == user]
        others = [r.text for r in rows if r.author != user]
        rng = random.Random(seed * 1_000_003 + zlib.crc32(user.encode()))
        drawn = rng.sample(others, min(len(mine), len(others)))
        out += mine + [Row(text, OTHER, user) for text in drawn]
    return out


def read_lamp(path: str | Path, *, seed: int = 0) -> LampData:
    """A `*_questions.json` file, with the `*_outputs.json` beside it when present. Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LaMP questions file {path} does not exist")
    outputs = path.with_name(path.name.replace("_questions.json", "_outputs.json"))
    try:
        return parse_lamp(path.read_bytes(), outputs.read_bytes() if outputs.is_file() else None, seed=seed)
    except DataError as exc:
        raise DataError(f"{path}: {exc}", exc.errors) from exc


def lamp_output(task: str, predictions: dict[str, str]) -> dict:
    """Predictions in the shape LaMP's evaluator scores: {"task": …, "golds": [{"id", "output"}]}."""
    name = {"LaMP_2N": "LaMP_2", "LaMP_2M": "LaMP_2"}.get(task, task)
    return {"task": name, "golds": [{"id": qid, "output": output} for qid, output in predictions.items()]}
