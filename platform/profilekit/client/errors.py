"""The API's error answers as typed exceptions, and the retry policy that honours Retry-After.

Each error keeps the HTTP `status`, the answer's `detail` and its whole JSON `body`. NotFound, NotTrained
and Conflict are also the library's own (profilekit.errors), so `except profilekit.errors.NotFound`
catches a local miss and a remote one alike.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

from profilekit import errors


class ApiError(errors.ProfilekitError):
    """An error answer of the API (or no answer at all: status 0)."""

    def __init__(self, message: str, *, status: int = 0, detail=None, body=None):
        Exception.__init__(self, message)
        self.status, self.detail, self.body = status, detail, body


class Unauthorized(ApiError):
    """401: no API key, or one the service does not know (or has revoked)."""


class Forbidden(ApiError):
    """403: the key's role may not do this (e.g. a client key on an admin route)."""


class NotFound(ApiError, errors.NotFound):
    """404: no such profile or job for this key; `ids` lists the unknown profiles of a prediction."""

    def __init__(self, message: str, **answer):
        super().__init__(message, **answer)
        detail = answer.get("detail")
        self.ids = detail.get("unknown_profile_ids", []) if isinstance(detail, dict) else []


class NotTrained(ApiError, errors.NotTrained):
    """409: profiles exist but have no trained artifact yet; `profiles` lists {"id", "state"} of each."""

    def __init__(self, message: str, **answer):
        super().__init__(message, **answer)
        self.profiles = answer["detail"].get("profiles", [])


class Conflict(ApiError, errors.Conflict):
    """409: the request collides with what is stored (e.g. an external id already in use)."""


class TooLarge(ApiError):
    """413: the upload is over the service's limit."""


class Invalid(ApiError):
    """422: the request is wrong; `errors` lists bad rows or fields, `profiles` the untrainable ones."""

    def __init__(self, message: str, **answer):
        super().__init__(message, **answer)
        body, detail = answer.get("body") or {}, answer.get("detail")
        self.errors = body.get("errors") or (detail if isinstance(detail, list) else [])
        self.profiles = detail.get("profiles", []) if isinstance(detail, dict) else []


class Overloaded(ApiError):
    """429 (or 503): the service is busy; `retry_after` is how many seconds it asked the caller to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **answer):
        super().__init__(message, **answer)
        self.retry_after = retry_after


class Unreachable(ApiError):
    """The service could not be reached (connection refused, unknown host, no connection within the
    timeout): nothing was sent."""


class NoAnswer(ApiError):
    """The request was sent but no answer came (the timeout passed, or the connection broke): it may or may
    not have been carried out, so it is not sent again; `wait` or a GET tells what happened."""


class ServerError(ApiError):
    """5xx: the service failed; the request may or may not have been carried out."""


def retry_after(headers) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, moment.timestamp() - time.time()) if moment else None


def error_from(response) -> ApiError:
    """The typed error of a non-2xx httpx response."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail") if isinstance(body, dict) else body
    message = detail.get("message", str(detail)) if isinstance(detail, dict) else str(detail)
    status = response.status_code
    answer = {"status": status, "detail": detail, "body": body}
    text = f"{status} {response.request.method} {response.request.url.path}: {message}"
    if status in (429, 503):
        return Overloaded(text, retry_after=retry_after(response.headers), **answer)
    kinds = {401: Unauthorized, 403: Forbidden, 404: NotFound, 413: TooLarge, 422: Invalid}
    if status == 409:
        return NotTrained(text, **answer) if isinstance(detail, dict) and "profiles" in detail else \
            Conflict(text, **answer)
    if status >= 500:
        return ServerError(text, **answer)
    return kinds.get(status, ApiError)(text, **answer)


@dataclass(frozen=True)
class Retry:
    """When a request is sent again: after a 429 or 503 (the service did not act on it; it waits as
    long as Retry-After asks, else `backoff` doubling up to `max_wait` seconds) and when the service
    could not be reached at all. At most `attempts` tries in all; then the error is raised. A Retry-After
    longer than `max_wait` (a key's rate limit can ask for hours) is not cut short, which would only be
    refused again: the error is raised at once with its `retry_after`."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    statuses: tuple[int, ...] = (429, 503)

    def delay(self, attempt: int, error: ApiError) -> float | None:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1), or None to give up."""
        if attempt >= self.attempts or (error.status and error.status not in self.statuses):
            return None
        asked = getattr(error, "retry_after", None)
        if asked is not None:
            return asked if asked <= self.max_wait else None
        return min(self.max_wait, self.backoff * 2 ** (attempt - 1))
