"""The serving cache of hot profile states: bounded by bytes, LRU, pins, counted."""

import random

import pytest
import torch

from profilekit.errors import CacheBudgetError
from profilekit.serving import ArtifactCache


class State(torch.nn.Module):
    def __init__(self, floats: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(floats))  # 4 bytes a float


def load(cache: ArtifactCache, version: str, floats: int, loads: list | None = None):
    return cache.get(version, lambda: (loads.append(version) if loads is not None else None) or State(floats))


def test_resident_bytes_never_exceed_the_budget_under_inserts_of_varied_sizes():
    cache, rng = ArtifactCache(max_bytes=10_000), random.Random(0)
    sizes = {}
    for _ in range(500):
        version = f"v{rng.randrange(60)}"
        sizes.setdefault(version, rng.randrange(1, 1200))  # 4 bytes … 4.8 kB each
        load(cache, version, sizes[version])
        held = sum(4 * sizes[v] for v in sizes if v in cache)
        assert cache.resident_bytes == held <= 10_000
    assert cache.evictions > 0 and cache.hits + cache.misses == 500
    assert cache.evictions == cache.misses - len(cache)  # every state loaded is resident or was evicted


def test_least_recently_used_goes_first_and_versions_never_mix():
    cache, loads = ArtifactCache(max_bytes=100), []
    for version in ("v1", "v2", "v1", "v3", "v2"):  # 40 bytes each: two fit
        load(cache, version, 10, loads)
    assert loads == ["v1", "v2", "v3", "v2"]  # v1 hit once; v2 was evicted by v3 (least recently used)
    assert "v1" not in cache and "v2" in cache and "v3" in cache
    assert (len(cache), cache.resident_bytes, cache.hits, cache.misses, cache.evictions) == (2, 80, 1, 4, 2)
    cache.evict("v3")
    assert len(cache) == 1 and cache.resident_bytes == 40


def test_pinned_profiles_survive_and_count_against_the_budget():
    cache = ArtifactCache(max_bytes=1_000)
    load(cache, "p-v1", 100)  # 400 bytes
    cache.pin("p", "p-v1")
    for i in range(20):  # 200 bytes each: only two fit beside the pin
        load(cache, f"x{i}", 50)
        assert "p-v1" in cache and cache.resident_bytes <= 1_000
    assert cache.pinned_bytes == 400 and len(cache) == 4
    load(cache, "p-v2", 100)  # the profile was retrained: its pin moves to the new version
    cache.pin("p", "p-v2")
    assert cache.pinned_profiles == {"p": "p-v2"} and cache.pinned_bytes == 400
    for i in range(20, 40):
        load(cache, f"x{i}", 50)
    assert "p-v2" in cache and "p-v1" not in cache  # the old version was evicted like any other


def test_pinning_more_than_the_budget_is_refused():
    cache = ArtifactCache(max_bytes=1_000)
    load(cache, "a", 150)  # 600 bytes
    cache.pin("pa", "a")
    load(cache, "b", 120)  # 480 bytes: more than the 400 the pin leaves
    assert "b" not in cache and cache.not_kept == 1
    with pytest.raises(CacheBudgetError, match="400 bytes .*budget of 1000 bytes .*PROFILEKIT_ARTIFACT_CACHE_BYTES"):
        cache.pin("pb", "b")
    load(cache, "c", 100)  # 400 bytes fit beside the pin
    cache.pin("pc", "c")
    assert cache.pinned_profiles == {"pa": "a", "pc": "c"} and cache.pinned_bytes == cache.resident_bytes == 1_000
    load(cache, "d", 1)
    assert "d" not in cache and cache.not_kept == 2  # nothing unpinned is left to hold it
    cache.unpin("pc")
    load(cache, "d", 1)
    assert "d" in cache and "c" not in cache and cache.evictions == 1  # unpinned, c is evicted like any other


def test_a_state_larger_than_the_budget_is_served_not_kept():
    cache = ArtifactCache(max_bytes=100)
    state = load(cache, "big", 1_000)
    assert state.w.numel() == 1_000 and "big" not in cache and cache.resident_bytes == 0 and cache.not_kept == 1


def test_composed_rows_are_charged_to_the_budget():
    class Growing(State):
        def keep_composed(self, charge):
            self.charge = charge

    cache = ArtifactCache(max_bytes=1_000)
    grower = cache.get("g", lambda: Growing(50))  # 200 bytes
    load(cache, "other", 100)  # 400 bytes
    assert grower.charge(300)  # 900 bytes now
    assert cache.resident_bytes == 900
    assert grower.charge(300)  # 1,200: the other state is evicted to make room
    assert "other" not in cache and cache.resident_bytes == 800 and cache.evictions == 1
    assert not grower.charge(500)  # it alone would exceed the budget: refused, nothing changes
    assert cache.resident_bytes == 800
    cache.evict("g")
    assert not grower.charge(1)  # an evicted state keeps nothing more


def test_an_evicted_state_charges_nothing_to_its_reloaded_version():
    class Growing(State):
        def keep_composed(self, charge):
            self.charge = charge

    cache = ArtifactCache(max_bytes=1_000)
    old = cache.get("g", lambda: Growing(10))
    cache.evict("g")
    new = cache.get("g", lambda: Growing(10))  # the same version loaded again while `old` still serves a batch
    assert not old.charge(100) and cache.resident_bytes == 40
    assert new.charge(100) and cache.resident_bytes == 140
