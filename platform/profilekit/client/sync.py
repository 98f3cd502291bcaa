"""The blocking client."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import httpx

from profilekit.client.base import MAX_ITEMS, BaseClient, job_id


class Client(BaseClient):
    """profilekit's HTTP API from Python:

        with Client("http://localhost:8000", api_key) as pk:
            job = pk.train([p["id"] for p in pk.upload("authors.jsonl")["profiles"]])
            pk.wait(job)
            pk.predict([(profile_id, "Senate passes the budget")])
    """

    def __init__(self, url: str, api_key: str | None = None, **options):
        super().__init__(url, api_key, **options)
        self._http = httpx.Client(base_url=self.url, headers=self.headers, timeout=self.timeout)

    def _request(self, method: str, path: str, **arguments):
        for attempt in itertools.count(1):
            try:
                response = self._http.request(method, path, **arguments)
            except httpx.TransportError as exc:
                response = exc
            done, value = self._settle(attempt, response)
            if done:
                return value
            time.sleep(value)

    def predict(self, items: list, *, batch_size: int = MAX_ITEMS) -> list[dict]:
        """One result per item ({"profile_id", "text"} or (profile_id, text)), in order; long lists go
        as several requests of `batch_size` items."""
        return [result for body in self._batches(items, batch_size)
                for result in self._request("POST", "/v1/predict", json=body)["results"]]

    def wait(self, job: str | dict, *, progress: bool = True, poll: float = 1.0,
             timeout: float | None = None) -> dict:
        """Poll the job until it ends (a progress bar unless progress=False); returns the final job. Its
        `state` says how it ended (succeeded, failed with `error`, cancelled). TimeoutError after
        `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = self.job(job_id(job))
        bar = self._bar(progress, current)
        while not self._show(bar, current):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {current['id']} still {current['state']} after {timeout} s")
            time.sleep(poll)
            current = self.job(current["id"])
        return current

    def profiles(self, *, page_size: int = 500) -> Iterator[dict]:
        """Every profile the key sees, page by page."""
        cursor = None
        while True:
            page = self.list_profiles(cursor=cursor, limit=page_size)
            yield from page["items"]
            if not (cursor := page["next_cursor"]):
                return

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
