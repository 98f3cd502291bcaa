"""profilekit.client: the HTTP API from Python, blocking (`Client`) or asyncio (`AsyncClient`), on
httpx. It imports no torch: a machine that only calls a hosted service needs none of the model.

Errors are typed (client/errors.py) and a `Retry` policy waits as long as a 429's Retry-After asks.
"""

from profilekit.client.aio import AsyncClient
from profilekit.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NoAnswer,
    NotFound,
    NotTrained,
    Overloaded,
    Retry,
    ServerError,
    TooLarge,
    Unauthorized,
    Unreachable,
)
from profilekit.client.sync import Client

__all__ = ["ApiError", "AsyncClient", "Client", "Conflict", "Forbidden", "Invalid", "NoAnswer", "NotFound",
           "NotTrained", "Overloaded", "Retry", "ServerError", "TooLarge", "Unauthorized", "Unreachable"]
