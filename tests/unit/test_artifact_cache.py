"""The serving cache of hot profile states."""


def test_artifact_cache_is_bounded_and_keyed_by_version():
    import torch

    from profilekit.serving import ArtifactCache

    class State(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(10))  # 40 bytes

    cache, loads = ArtifactCache(max_entries=2), []
    for version in ("v1", "v2", "v1", "v3", "v2"):
        cache.get(version, lambda v=version: loads.append(v) or State())
    assert loads == ["v1", "v2", "v3", "v2"]  # v1 hit once; v2 was evicted by v3 (least recently used)
    assert len(cache) == 2 and cache.resident_bytes == 80
    cache.evict("v3")
    assert len(cache) == 1
