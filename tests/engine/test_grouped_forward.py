"""Serving groups a batch's rows by the prompt length of their profiles, and those by text length, one
forward per sub-batch: the answers are those of one forward over the whole batch, in the rows' order,
and a row of a rare group is answered in the same batch as every other row."""

from __future__ import annotations

import asyncio
import random

import pytest

from profilekit.serving import Batcher
from tests.conftest import TEXTS
from tests.engine.test_mixed_batch import make_profiles, new, trained_looking


@pytest.mark.parametrize("split_overhead", [None, 0, 128])  # none, every length alone, the default
def test_grouped_predictions_equal_one_forward_for_every_method(tiny_engine, monkeypatch, split_overhead):
    monkeypatch.setattr(tiny_engine, "split_overhead", split_overhead)
    profiles = make_profiles(tiny_engine)  # every method twice; the tiny prompt lengths differ by method
    states = profiles + [None, None] + profiles[:5]
    random.Random(3).shuffle(states)
    texts = (TEXTS * 4)[: len(states)]  # texts of several lengths
    ungrouped = tiny_engine.predict(texts, states, grouped=False)
    grouped = tiny_engine.predict(texts, states)
    for row, (a, b) in enumerate(zip(grouped, ungrouped, strict=True)):
        assert a.label == b.label, row
        assert a.scores.keys() == b.scores.keys(), row
        assert all(abs(a.scores[k] - b.scores[k]) < 1e-5 for k in a.scores), (row, a.scores, b.scores)

    tokens = tiny_engine.backbone.tokenize(texts)
    outputs = tiny_engine.forward_grouped(tokens["input_ids"], tokens["attention_mask"], states)
    lengths = [{states[r].prompt_tokens if states[r] is not None else 0 for r in rows.tolist()} for rows, _ in outputs]
    assert all(len(group) == 1 for group in lengths) and len(outputs) >= 3  # one prompt length per forward
    if split_overhead == 0:  # and rows of different lengths in different forwards
        widths = [set(tokens["attention_mask"][rows].sum(1).tolist()) for rows, _ in outputs]
        assert all(len(w) == 1 for w in widths) and len(outputs) > len(set().union(*lengths))
    assert sorted(r for rows, _ in outputs for r in rows.tolist()) == list(range(len(states)))  # each row once


@pytest.mark.parametrize("method", ["prompt_tuning", "dpt", "dept"])
def test_a_rare_prompt_row_is_answered_in_the_same_batcher_forward(tiny_engine, method):
    rare = trained_looking(new(tiny_engine, method, ["a", "b"], seed=1), 2)
    common = trained_looking(new(tiny_engine, "xpeft_hard", ["a", "b"], seed=3), 4)
    calls = []

    def run_batch(rows):
        calls.append(len(rows))
        return tiny_engine.predict([text for _, text in rows], [state for state, _ in rows])

    batcher = Batcher(run_batch, max_batch_size=64, max_wait_ms=200)

    async def scenario():
        requests = [[(common, TEXTS[i]) for i in range(6)], [(rare, TEXTS[7]), (common, TEXTS[1])], [(None, TEXTS[2])]]
        return await asyncio.gather(*(batcher.submit(rows) for rows in requests))

    try:
        answers = asyncio.run(scenario())
    finally:
        batcher.close()
    assert calls == [9]  # one batch, every group in it
    alone = tiny_engine.predict([TEXTS[7], TEXTS[1]], [rare, common], grouped=False)
    assert [p.label for p in answers[1]] == [p.label for p in alone]
    assert abs(answers[1][0].scores["a"] - alone[0].scores["a"]) < 1e-5
    assert answers[2][0].label is None and len(answers[0]) == 6
