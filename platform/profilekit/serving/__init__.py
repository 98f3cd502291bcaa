"""Serving floor: the per-process engine cache, hot profile states, the one batched loader and the
dynamic batcher that merges rows of concurrent requests into shared forwards."""

from profilekit.serving.batcher import Batcher, DeadlineExceeded, QueueFull
from profilekit.serving.cache import ArtifactCache
from profilekit.serving.engines import EngineCache
from profilekit.serving.loader import load_states
from profilekit.serving.service import Serving, artifact_cache

__all__ = ["ArtifactCache", "Batcher", "DeadlineExceeded", "EngineCache", "QueueFull", "Serving", "artifact_cache",
           "load_states"]
