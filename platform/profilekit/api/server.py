"""uvicorn's server, stopping the way a load balancer needs (`profilekit serve` runs it).

SIGTERM: /readyz answers 503 at once while requests are still served for `drain_seconds` (the balancer
notices and sends no more); then the port closes and the requests in flight get `shutdown_timeout_seconds`
to finish; then the process exits 0. SIGINT (Ctrl-C) skips the drain; a second Ctrl-C stops at once.
uvicorn's own server would re-raise the signal after its shutdown and die by it, skipping our clean-up."""

from __future__ import annotations

import signal
import threading
import time

import uvicorn


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, draining: threading.Event, drain_seconds: float):
        super().__init__(config)
        self.draining, self.drain_seconds = draining, drain_seconds
        self.exit_at: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        first = not self.draining.is_set()
        self.draining.set()  # /readyz: 503 from now on
        if sig == signal.SIGINT and not first:
            self.should_exit = self.force_exit = True  # a second Ctrl-C: stop waiting for requests in flight
        elif sig == signal.SIGTERM and first and self.drain_seconds > 0:
            self.exit_at = time.monotonic() + self.drain_seconds
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.exit_at is not None and time.monotonic() >= self.exit_at:
            self.should_exit = True
        return await super().on_tick(counter)
