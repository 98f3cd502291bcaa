"""Limits on what a caller may send.

Every request body is bounded while it streams in: uploads by `max_upload_bytes`, every other body
(JSON) by the much smaller `max_json_bytes`. Over the limit → 413, before the body is parsed or kept.

Predict rows are rate-limited per key: a token bucket of the key's rows per second (its own limit, else
`rate_limit_rows_per_second`; none: unlimited) holding `rate_limit_burst_seconds` of it. A request the
bucket cannot pay for → 429 with Retry-After (the seconds until it can) and a body naming the limit. A
request larger than the bucket is admitted when the bucket is full and leaves it in debt, so big requests
are slowed, never refused for ever.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException

MAX_RETRY_AFTER = 86_400  # seconds: the longest Retry-After a 429 of the rate limit asks for
UPLOAD_PATHS = re.compile(r"/v1/(datasets|profiles/[^/]+/examples)/?")


class BodyLimit:
    """ASGI middleware: a declared Content-Length over the limit is refused at the first read; a body
    without one (chunked) is counted as it arrives. The 413 is raised from `receive`, so the app's
    exception handling answers it like any other HTTPException."""

    def __init__(self, app, *, json_bytes: int, upload_bytes: int):
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = UPLOAD_PATHS.fullmatch(scope["path"]) is not None
        limit = self.upload_bytes if upload else self.json_bytes
        what = "upload" if upload else "request body"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = 0

        async def limited_receive():
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise HTTPException(413, f"{what} of {int(declared)} bytes exceeds the limit of {limit} bytes")
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"{what} exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


@dataclass
class _Bucket:
    rate: float  # rows per second
    tokens: float  # rows it may send now (negative: in debt)
    at: float  # when `tokens` was counted


class RowRateLimit:
    """Token buckets of predict rows, one per key, filled at the key's rate up to `burst_seconds` of it."""

    def __init__(self, *, default_rate: float | None, burst_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.default_rate = default_rate
        self.burst_seconds = burst_seconds
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rows: int, rate: float | None = None) -> None:
        """Take `rows` from the key's bucket (`rate`: its own limit, None: the default), or raise 429."""
        rate = rate or self.default_rate
        if rate is None:
            return
        capacity = rate * self.burst_seconds
        with self._lock:
            moment = self.clock()
            bucket = self._buckets.get(key_id)
            if bucket is None or bucket.rate != rate:  # a new key, or its limit changed: a full bucket
                bucket = self._buckets[key_id] = _Bucket(rate, capacity, moment)
            bucket.tokens = min(capacity, bucket.tokens + (moment - bucket.at) * rate)
            bucket.at = moment
            needed = min(rows, capacity)  # a request larger than the bucket waits for a full one
            if bucket.tokens >= needed:
                bucket.tokens -= rows
                return
            # at a tiny rate the wait overflows a float: a day at most, when the client asks again
            retry_after = max(1, math.ceil(min(MAX_RETRY_AFTER, (needed - bucket.tokens) / rate)))
        raise HTTPException(429, f"rate limit: this key may send {rate:g} rows/s (bursts of {capacity:g} rows); "
                            f"{rows} rows now would exceed it, retry in {retry_after} s",
                            headers={"Retry-After": str(retry_after)})
