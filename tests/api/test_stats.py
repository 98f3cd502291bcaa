"""The dashboard's last hour (api/stats.py): per-minute figures from the answers and forwards it saw,
memory sampled at most every SAMPLE_SECONDS, and the cache's hit rate of each minute."""

from profilekit.api.stats import MINUTES, SAMPLE_SECONDS, History


class Clock:
    def __init__(self):
        self.now = 600.0  # minute 10, second 0

    def __call__(self):
        return self.now


def test_a_minute_counts_its_answers_forwards_and_the_cache_lookups_since_the_minute_before():
    clock = Clock()
    history = History(clock)
    cache = {"rss": 5_000, "bytes": 100, "hits": 0, "misses": 0}

    def memory():
        return cache["rss"], cache["bytes"], cache["hits"], cache["misses"]

    history.response("/v1/predict", 200, 0.2, memory)  # sampled: nothing looked up yet
    cache |= {"hits": 3, "misses": 1, "bytes": 300}
    clock.now += 1
    history.response("/v1/predict", 429, 0.0, memory)  # within SAMPLE_SECONDS: not sampled again
    history.batch(rows=8, queued=5)
    clock.now = 660.0 + 30  # the next minute, 30 s in
    cache |= {"hits": 9, "misses": 3}  # 6 hits and 2 misses since the last sample
    history.response("/v1/predict", 500, 0.1, memory)
    series = history.series()

    assert all(len(values) == MINUTES for values in series.values())
    assert series["requests_per_second"][-2] == 1 / 60 and series["rejected"][-2] == 1
    assert series["rows_per_second"][-2] == 8 / 60 and series["queue_rows"][-2] == 5
    assert series["errors"][-1] == 1 and series["requests_per_second"][-1] == 0  # a 500 is not a served request
    assert series["cache_bytes"][-2] == 100 and series["cache_bytes"][-1] == 300
    assert series["cache_hit_rate"][-2] is None  # no earlier sample to count from
    assert series["cache_hit_rate"][-1] == 6 / 8
    assert series["p50_ms"][-2] == 200.0 and series["p50_ms"][-1] is None
    assert series["rss_bytes"][0] is None  # a minute nobody sampled


def test_the_page_can_sample_now_whatever_the_last_answer_sampled():
    clock = Clock()
    history = History(clock)
    history.response("/healthz", 200, 0.0, lambda: (1, 0, 0, 0))
    clock.now += SAMPLE_SECONDS / 2
    history.sample(lambda: (2, 4096, 1, 1))  # the dashboard, drawing its charts
    assert history.series()["cache_bytes"][-1] == 4096 and history.series()["rss_bytes"][-1] == 2
