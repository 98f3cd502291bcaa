"""The asyncio client: the same calls as `Client`, each awaited."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import httpx

from profilekit.client.base import MAX_ITEMS, BaseClient, job_id


class AsyncClient(BaseClient):
    """    async with AsyncClient("http://localhost:8000", api_key) as pk:
            results = await pk.predict([(profile_id, "Senate passes the budget")])
    """

    def __init__(self, url: str, api_key: str | None = None, **options):
        super().__init__(url, api_key, **options)
        self._http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=self.timeout)

    async def _request(self, method: str, path: str, **arguments):
        for attempt in itertools.count(1):
            try:
                response = await self._http.request(method, path, **arguments)
            except httpx.TransportError as exc:
                response = exc
            done, value = self._settle(attempt, response)
            if done:
                return value
            await asyncio.sleep(value)

    async def predict(self, items: list, *, batch_size: int = MAX_ITEMS) -> list[dict]:
        """One result per item, in order; long lists go as several requests of `batch_size` items."""
        results = []
        for body in self._batches(items, batch_size):
            results += (await self._request("POST", "/v1/predict", json=body))["results"]
        return results

    async def wait(self, job: str | dict, *, progress: bool = True, poll: float = 1.0,
                   timeout: float | None = None) -> dict:
        """Poll the job until it ends; returns the final job (see Client.wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = await self.job(job_id(job))
        bar = self._bar(progress, current)
        while not self._show(bar, current):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {current['id']} still {current['state']} after {timeout} s")
            await asyncio.sleep(poll)
            current = await self.job(current["id"])
        return current

    async def profiles(self, *, page_size: int = 500) -> AsyncIterator[dict]:
        cursor = None
        while True:
            page = await self.list_profiles(cursor=cursor, limit=page_size)
            for item in page["items"]:
                yield item
            if not (cursor := page["next_cursor"]):
                return

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
