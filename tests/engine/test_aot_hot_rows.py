"""Hot AoT profiles keep their composed bias rows in the artifact cache (issue #15): the answers are
those of profiles composed from their factors every forward, the rows count against the cache's
bytes, and a forward of tokens already seen composes nothing."""

import pytest
import torch

from profilekit.methods.aot import layer as aot_layer
from profilekit.serving import ArtifactCache
from profilekit.serving.cache import state_bytes
from tests.conftest import TEXTS
from tests.engine.test_mixed_batch import new, trained_looking

BATCHES = [  # (texts, which of the six profiles serves each row)
    (TEXTS[:6], [0, 1, 2, 3, 4, 5]),  # every profile composes its rows
    (TEXTS[2:8], [0, 0, 1, 5, 5, 2]),  # some tokens new to a profile, some profiles absent
    (TEXTS[:6], [0, 1, 2, 3, 4, 5]),  # all seen: gathered
    (TEXTS[2:8], [0, 0, 1, 5, 5, 2]),
]


def logits(engine, texts, states):
    tokens = engine.backbone.tokenize(texts)
    with torch.inference_mode():
        return engine.forward(tokens["input_ids"], tokens["attention_mask"], states).logits


@pytest.mark.parametrize("method", ["aot_fc", "aot_kron"])
@pytest.mark.parametrize("budget", ["ample", "tight"])
def test_kept_rows_give_the_answers_of_composed_ones(tiny_engine, method, budget):
    artifacts = [tiny_engine.save(trained_looking(new(tiny_engine, method, ["politics", "sports", "food"], seed=i),
                                                  seed=10 + i)) for i in range(6)]
    composed = [tiny_engine.load(a) for a in artifacts]  # composed from their factors every forward
    params = sum(state_bytes(s) for s in composed)
    cache = ArtifactCache(2**30 if budget == "ample" else params + 2_000)  # tight: few rows fit beside them
    hot = [cache.get(f"v{i}", lambda a=a: tiny_engine.load(a)) for i, a in enumerate(artifacts)]
    for texts, which in BATCHES:
        expected = logits(tiny_engine, texts, [composed[i] for i in which])
        served = logits(tiny_engine, texts, [hot[i] for i in which])
        torch.testing.assert_close(served, expected, rtol=1e-5, atol=1e-5)
        resident = [s for i, s in enumerate(hot) if f"v{i}" in cache]
        assert cache.resident_bytes == sum(state_bytes(s) for s in resident) <= cache.max_bytes
    if budget == "ample":
        seen = {p: set() for p in range(6)}
        for texts, which in BATCHES:
            tokens = tiny_engine.backbone.tokenize(texts)
            for r, p in enumerate(which):
                seen[p] |= set(tokens["input_ids"][r][tokens["attention_mask"][r].bool()].tolist())
        assert [s.hot.ids.tolist() for s in hot] == [sorted(seen[p]) for p in range(6)]
        assert cache.evictions == 0
    else:  # rows were kept until the budget was reached, evicting the least recently used states
        assert any(s.composed_bytes() for s in hot) and cache.evictions > 0


@pytest.mark.parametrize("method", ["aot_fc", "aot_kron"])
def test_a_forward_of_seen_tokens_composes_nothing(tiny_engine, method, monkeypatch):
    state = trained_looking(new(tiny_engine, method, ["a", "b"]), 3)
    hot = ArtifactCache().get("v", lambda: state)
    logits(tiny_engine, TEXTS[:4], [hot] * 4)

    def refuse(*args):
        raise AssertionError("composed again")

    monkeypatch.setattr(aot_layer, "bias_of", refuse)
    logits(tiny_engine, TEXTS[1:3], [hot, hot])  # gathered from the kept rows
    with pytest.raises(AssertionError, match="composed again"):
        logits(tiny_engine, ["an unseen zebra"], [hot])
