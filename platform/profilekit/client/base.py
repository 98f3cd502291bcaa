"""What the sync and the async client share: the API's calls as (method, path, arguments), the bodies of
uploads, predictions split into requests, the progress bar of `wait`, and when to retry. Each call
answers the API's JSON (dicts and lists, as documented at /docs)."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import httpx

from profilekit.client.errors import NoAnswer, Retry, Unreachable, error_from
from profilekit.data import MIN_ROWS
from profilekit.jobs import FINAL_STATES

MAX_ITEMS = 1024  # the API's limit of items per prediction request
CONTENT_TYPES = {".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson", ".csv": "text/csv",
                 ".json": "application/json"}
Rows = str | PathLike | bytes | list
DEFAULT_RETRY = Retry()


def rows_body(data: Rows, content_type: str | None = None) -> tuple[bytes, str]:
    """A file (JSONL, CSV or JSON by its suffix), bytes (JSONL unless `content_type` says), or a list of
    row dicts ({"text", "category"[, "author"]}) → (body, content type)."""
    if isinstance(data, list):
        return "\n".join(json.dumps(row) for row in data).encode(), "application/x-ndjson"
    if isinstance(data, bytes):
        return data, content_type or "application/x-ndjson"
    path = Path(data)
    if content_type is None and path.suffix.lower() not in CONTENT_TYPES:
        raise ValueError(f"{path.name}: say its content_type, or name it .jsonl, .csv or .json")
    return path.read_bytes(), content_type or CONTENT_TYPES[path.suffix.lower()]


def job_id(job: str | dict) -> str:
    return job["id"] if isinstance(job, dict) else job


def prediction_items(items: list) -> list[dict]:
    """{"profile_id", "text"} dicts or (profile_id, text) pairs → the API's items."""
    return [item if isinstance(item, dict) else {"profile_id": item[0], "text": item[1]} for item in items]


class BaseClient:
    """`Client(url, api_key)`; `retry=None` raises Overloaded at once instead of waiting and trying again."""

    def __init__(self, url: str, api_key: str | None = None, *, retry: Retry | None = DEFAULT_RETRY,
                 timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retry, self.timeout = retry, timeout

    def _settle(self, attempt: int, response: httpx.Response | httpx.TransportError) -> tuple[bool, object]:
        """(True, the answer's JSON) on success, (False, seconds to wait) to try again; else raises."""
        if isinstance(response, (httpx.ConnectError, httpx.ConnectTimeout)):
            error = Unreachable(f"cannot reach {self.url}: {response!r}")
        elif isinstance(response, httpx.TransportError):  # sent, but nothing came back: never sent again
            raise NoAnswer(f"no answer from {self.url} (timeout {self.timeout} s, or the connection broke): "
                           f"{response!r}; the request may or may not have been carried out") from response
        elif response.is_success:
            return True, response.json() if response.content else None
        else:
            error = error_from(response)
        wait = self.retry.delay(attempt, error) if self.retry is not None else None
        if wait is None:
            raise error
        return False, wait

    # ---- the API's calls; each returns what `_request` returns (the JSON, or an awaitable of it) ----
    def upload(self, data: Rows, *, outputs: Rows | None = None, min_rows: int = MIN_ROWS,
               content_type: str | None = None):
        """Many authors at once: rows of text, category, author (a JSONL/CSV/JSON file, bytes or a list of
        dicts), or a LaMP pair (`data` = *_questions.json, `outputs` = *_outputs.json). One profile per
        author with at least `min_rows` rows."""
        params = {"min_rows": min_rows}
        if outputs is not None or str(data).endswith("_questions.json"):
            files = {"questions": ("questions.json", Path(data).read_bytes() if not isinstance(data, bytes) else data)}
            if outputs is not None:
                files["outputs"] = ("outputs.json", Path(outputs).read_bytes() if not isinstance(outputs, bytes)
                                    else outputs)
            return self._request("POST", "/v1/datasets", params=params, files=files)
        body, kind = rows_body(data, content_type)
        return self._request("POST", "/v1/datasets", params=params, content=body, headers={"Content-Type": kind})

    def create_profile(self, external_id: str | None = None, *, labels: list[str] | None = None):
        body = {"external_id": external_id} | ({"labels": labels} if labels is not None else {})
        return self._request("POST", "/v1/profiles", json=body)

    def add_examples(self, profile_id: str, data: Rows, *, content_type: str | None = None):
        """Rows of text and category for one profile (a file, bytes or a list of dicts)."""
        body, kind = rows_body(data, content_type)
        return self._request("POST", f"/v1/profiles/{profile_id}/examples", content=body,
                             headers={"Content-Type": kind})

    def profile(self, profile_id: str):
        return self._request("GET", f"/v1/profiles/{profile_id}")

    def list_profiles(self, *, cursor: str | None = None, limit: int = 50):
        """One page: {"items": [...], "next_cursor": …}; pass next_cursor back for the next page."""
        return self._request("GET", "/v1/profiles", params={"limit": limit} | ({"cursor": cursor} if cursor else {}))

    def delete_profile(self, profile_id: str):
        return self._request("DELETE", f"/v1/profiles/{profile_id}")

    def artifacts(self, profile_id: str):
        """Every artifact version of the profile, newest first; `current` marks the one predictions use."""
        return self._request("GET", f"/v1/profiles/{profile_id}/artifacts")

    def promote(self, profile_id: str, artifact_id: str):
        """Make one of the profile's artifacts its current one (a rollback); returns the profile."""
        return self._request("POST", f"/v1/profiles/{profile_id}/artifacts/{artifact_id}/promote")

    def train(self, profile_ids: list[str], method: str = "xpeft_hard", *, hyperparameters: dict | None = None,
              train: dict | None = None, idempotency_key: str | None = None, promotion: dict | None = None):
        """One job training these profiles together; the same idempotency_key and body give the same job
        again, so a retried call never trains twice. `promotion={"policy": "if_not_worse", "tolerance":
        0.02}` keeps a profile's current artifact when the new one scores lower on its holdout."""
        body = {"profile_ids": list(profile_ids), "method": method, "hyperparameters": hyperparameters or {},
                "train": train or {}} | ({"promotion": promotion} if promotion else {})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._request("POST", "/v1/jobs", json=body, headers=headers)

    def job(self, job: str | dict):
        return self._request("GET", f"/v1/jobs/{job_id(job)}")

    def jobs(self, *, state: str | None = None, limit: int = 100):
        return self._request("GET", "/v1/jobs", params={"limit": limit} | ({"state": state} if state else {}))

    def job_events(self, job: str | dict, *, after: int = 0):
        return self._request("GET", f"/v1/jobs/{job_id(job)}/events", params={"after": after})

    def cancel(self, job: str | dict):
        return self._request("POST", f"/v1/jobs/{job_id(job)}/cancel")

    def build_pool(self, *, profile_ids: list[str] | None = None, largest: int | None = None,
                   tenant: str | None = None, name: str | None = None, set_default: bool = False,
                   train: dict | None = None):
        """Admin: a job building a warm pool from these profiles, or the tenant's `largest` by examples;
        `set_default` makes it the tenant's default pool once built."""
        body = {"profile_ids": profile_ids, "largest": largest, "tenant": tenant, "name": name,
                "set_default": set_default, "train": train or {}}
        return self._request("POST", "/v1/pools", json=body)

    def pools(self):
        """The pools the key sees (an admin: every one), each with the tenants it is the default of."""
        return self._request("GET", "/v1/pools")

    def set_default_pool(self, pool_hash: str | None, *, tenant: str | None = None):
        """Admin: the pool a tenant's jobs train on when they name none (None: the random pool); returns the pools."""
        return self._request("PUT", "/v1/pools/default", json={"pool_hash": pool_hash, "tenant": tenant})

    def create_key(self, *, role: str = "client", tenant: str | None = None, name: str | None = None,
                   rows_per_second: float | None = None):
        """Admin: a new key; the answer's `key` is the only time the key itself is shown."""
        return self._request("POST", "/v1/keys", json={"role": role, "tenant": tenant, "name": name,
                                                         "rows_per_second": rows_per_second})

    def keys(self):
        """Admin: every key (never the keys themselves), oldest first."""
        return self._request("GET", "/v1/keys")

    def revoke_key(self, key_id: str):
        """Admin: the key gets 401 from now on, and dashboards signed in with it are signed out."""
        return self._request("DELETE", f"/v1/keys/{key_id}")

    def ready(self):
        """/readyz: {"ready": …, "checks": {...}}; 503 while not ready (Overloaded, retried)."""
        return self._request("GET", "/readyz")

    # ---- helpers of the calls made of several requests ----
    @staticmethod
    def _batches(items: list, batch_size: int) -> list[dict]:
        if not 1 <= batch_size <= MAX_ITEMS:
            raise ValueError(f"batch_size must be within 1..{MAX_ITEMS}, got {batch_size}")
        items = prediction_items(items)
        return [{"items": items[i:i + batch_size]} for i in range(0, len(items), batch_size)]

    @staticmethod
    def _bar(progress: bool, job: dict):
        if not progress:
            return None
        from tqdm import tqdm

        return tqdm(total=1, desc=f"job {job['id'][:8]}", unit="step", dynamic_ncols=True)

    @staticmethod
    def _show(bar, job: dict) -> bool:
        """Move the bar to the job's progress; True once the job has ended."""
        done = job["state"] in FINAL_STATES
        if bar is not None:
            step, total = job["progress"].get("step", 0), job["progress"].get("total_steps", 0)
            bar.total = max(total, step, 1)
            bar.n = bar.total if done and job["state"] == "succeeded" else step
            loss = job["progress"].get("loss")
            bar.set_postfix(state=job["state"], epoch=job["progress"].get("epoch", "-"),
                            **({"loss": f"{loss:.3f}"} if isinstance(loss, (int, float)) else {}), refresh=False)
            bar.refresh()
            if done:
                bar.close()
        return done
