"""Serving cuts a batch into sub-batches of similar length (engine/inputs.split_by_length): every row is
answered exactly once, and the cut is the cheapest at the stated price of a forward."""

from __future__ import annotations

import itertools
import random

import pytest

from profilekit.engine.inputs import split_by_length


def price(lengths: list[int], parts: list[list[int]], overhead: int) -> int:
    return sum(len(part) * max(lengths[r] for r in part) + overhead for part in parts)


def cheapest_by_brute_force(lengths: list[int], overhead: int) -> int:
    """Every cut of the rows sorted by length into contiguous runs."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        parts, start = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                parts.append(order[start:i])
                start = i
        parts.append(order[start:])
        best = min(best, price(lengths, parts, overhead))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_the_cut_answers_every_row_once_at_the_least_price(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([5, 9, 9, 17, 30, 31, 64]) for _ in range(rng.randint(1, 11))]
    overhead = rng.choice([0, 8, 40, 200])
    parts = split_by_length(lengths, overhead)
    assert sorted(r for part in parts for r in part) == list(range(len(lengths)))
    assert all(part for part in parts)
    assert price(lengths, parts, overhead) == cheapest_by_brute_force(lengths, overhead)


def test_rows_of_one_length_or_no_split_stay_one_forward():
    assert split_by_length([12] * 9, 0) == [list(range(9))]
    assert [sorted(p) for p in split_by_length([3, 90, 4, 88], None)] == [[0, 1, 2, 3]]
    assert [sorted(p) for p in split_by_length([3, 90, 4, 88], 10**6)] == [[0, 1, 2, 3]]
    assert [sorted(p) for p in split_by_length([3, 90, 4, 88], 0)] == [[0], [2], [3], [1]]
    assert [sorted(p) for p in split_by_length([3, 90, 4, 88], 16)] == [[0, 2], [1, 3]]
