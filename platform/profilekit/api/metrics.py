"""Prometheus metrics of one API process, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select


class _StoreCollector:
    """Figures read from the database at scrape time: jobs by state, profiles, artifact bytes."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        from profilekit.store.models import Artifact, Job, Profile

        jobs = GaugeMetricFamily("profilekit_jobs", "Jobs by state", labels=["state"])
        with self.runtime.sessions() as session:
            for state, count in session.execute(select(Job.state, func.count()).group_by(Job.state)):
                jobs.add_metric([state], count)
            profiles = session.scalar(select(func.count()).select_from(Profile))
            stored = session.scalar(
                select(func.coalesce(func.sum(Artifact.stored_bytes), 0)).join(
                    Profile, Profile.current_artifact_id == Artifact.id))
        yield jobs
        yield GaugeMetricFamily("profilekit_profiles", "Registered profiles", value=profiles)
        yield GaugeMetricFamily("profilekit_artifact_bytes", "Stored bytes of current artifacts", value=stored)


class _CacheCollector:
    """This process's artifact cache of hot profile states (serving/cache.py)."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        serving = self.runtime.serving_if_loaded
        cache = serving.cache if serving else None
        for name, text, attr in (("hits", "Profile states found in the artifact cache", "hits"),
                                 ("misses", "Profile states loaded from the database", "misses"),
                                 ("evictions", "Profile states evicted to stay within the byte budget", "evictions"),
                                 ("not_kept", "Profile states served but not kept: larger than the budget left "
                                  "by pinned ones", "not_kept")):
            yield CounterMetricFamily(f"profilekit_cache_{name}", text, value=getattr(cache, attr) if cache else 0)
        for name, text, attr in (("resident_bytes", "Bytes of hot profile states in memory", "resident_bytes"),
                                 ("pinned_bytes", "Bytes of pinned profile states", "pinned_bytes"),
                                 ("budget_bytes", "The artifact cache's byte budget", "max_bytes")):
            yield GaugeMetricFamily(f"profilekit_cache_{name}", text, value=getattr(cache, attr) if cache else 0)
        yield GaugeMetricFamily("profilekit_cache_entries", "Profile states in the artifact cache",
                                value=len(cache) if cache else 0)


class _BatcherCollector:
    """The batcher's own figures: rows dropped before their forward (client gone, deadline passed) and
    the rows/s its admission works with."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        serving = self.runtime.serving_if_loaded
        batcher = serving.batcher if serving else None
        yield CounterMetricFamily("profilekit_batcher_dropped_rows", "Rows dropped before their forward: "
                                  "the client went away or the request's deadline passed",
                                  value=batcher.dropped_rows if batcher else 0)
        yield GaugeMetricFamily("profilekit_batcher_rows_per_second", "Rows per second of the recent forwards",
                                value=(batcher.rows_per_second or 0) if batcher else 0)


class Metrics:
    def __init__(self, runtime):
        self.registry = CollectorRegistry()
        self.requests = Counter("profilekit_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("profilekit_http_request_seconds", "HTTP latency", ["route"],
                                 registry=self.registry)
        self.batch_size = Histogram("profilekit_batch_rows", "Rows per forward pass", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.queue_depth = Gauge("profilekit_batcher_queued_rows", "Rows waiting in the batcher",
                                 registry=self.registry)
        self.queue_depth.set_function(
            lambda: runtime.serving_if_loaded.batcher.queued_rows if runtime.serving_if_loaded else 0)
        self.registry.register(_StoreCollector(runtime))
        self.registry.register(_BatcherCollector(runtime))
        self.registry.register(_CacheCollector(runtime))
        runtime.batch_observers.append(self.batch_size.observe)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int):
        """These metrics on a port of their own (a thread); returns the server, to shut down."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
