"""All configuration in one place, read from the environment (PROFILEKIT_*) when asked for."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from profilekit.errors import SettingsError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILEKIT_", extra="ignore")

    backbone_path: Path | None = Field(
        default=None, description="Local BERT/RoBERTa-style encoder folder; None = packaged all-MiniLM-L6-v2."
    )
    device: str = Field(default="cpu", description="torch device for the engine: cpu, cuda, cuda:1, …")
    dtype: str = Field(default="float32", description="float32, float16 or bfloat16 for the frozen backbone.")
    max_length: int = Field(default=128, ge=1, description="Token limit per input text.")
    data_dir: Path = Field(default=Path("data"), description="Folder of the embedded default's files.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; None = SQLite in data_dir (embedded default). "
        "Scale: postgresql+psycopg://user@host/db")
    broker_url: str | None = Field(
        default=None, description="Celery broker; None = kombu's SQLAlchemy transport on SQLite in data_dir "
        "(no server). Scale: redis://host:6379/0")
    job_max_attempts: int = Field(default=3, description="Attempts of a job before it is failed for good.")
    job_stale_seconds: float = Field(
        default=120.0, gt=0, description="A running job without a heartbeat for this long is taken as orphaned "
        "(its worker died or hangs) and re-queued by the reconciler of any worker (or when a worker starts).")
    reconcile_seconds: float = Field(
        default=15.0, gt=0, description="How often every worker looks for orphaned jobs (the reconciler); one "
        "worker wins each job's re-queue.")
    worker_heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a worker writes its own heartbeat (the dashboard's liveness).")
    visibility_timeout: int = Field(
        default=6 * 3600, description="Redis broker: seconds before an unacknowledged job is redelivered; "
        "longer than the longest job.")
    default_pool_size: int = Field(default=100, description="N of the default random pool.")
    pool_store: str = Field(
        default="db", pattern=r"^(db|s3://[^/]+(/.*)?)$", description="Where trained (warm) pools' tensors "
        "go, readable by every worker and API replica: db (chunks in the database) or s3://bucket/prefix "
        "(credentials from the standard AWS_* environment). data_dir keeps only a cache keyed by pool hash.")
    s3_endpoint_url: str | None = Field(
        default=None, pattern=r"^(https?://\S+)?$", description="S3-compatible endpoint (MinIO, …) for an s3:// "
        "pool_store, http(s)://host:port; None or empty = AWS.")
    pool_chunk_bytes: int = Field(
        default=8 * 2**20, ge=1, le=256 * 2**20, description="Size of the database chunks a pool is stored in "
        "(each row stays far below PostgreSQL's 1 GB value limit, so a pool of several GB fits).")
    # serving
    preload_model: bool = Field(
        default=True, description="Load the backbone when the API starts; off: on the first prediction "
        "(an API process that only onboards and queues jobs then never imports torch).")
    max_batch_size: int = Field(default=64, ge=1, description="Rows per forward formed by the dynamic batcher.")
    max_wait_ms: float = Field(default=5.0, ge=0, description="How long a request waits for company in a batch.")
    length_split_overhead: int = Field(
        default=128, ge=0, description="A batch's rows are cut into sub-batches of similar length, one forward "
        "each padded to its own longest row, when that saves more padded positions than this many per extra "
        "forward (its fixed cost, in positions). On a CPU a forward costs about its positions (16 to 128 were "
        "equally good on 2 cores, docs/benchmarks.md); on a GPU a small forward may cost about as much as a "
        "full one: measure with bench.length_split and raise it; 1000000 never cuts by length (rows are still "
        "grouped by the prompt length their method inserts).")
    max_queue_rows: int = Field(default=4096, ge=1, description="Rows waiting in the batcher before 429s.")
    max_queue_seconds: float = Field(
        default=1.0, gt=0, description="Longest expected wait in the batcher's queue (its backlog at the "
        "measured rows/s) a prediction is admitted with; beyond it 429 with a Retry-After of the backlog.")
    rate_limit_rows_per_second: float | None = Field(
        default=None, gt=0, description="Predict rows per second a key may send when it has no limit of its "
        "own (`profilekit keys limit`); None: no limit. Beyond it 429 with Retry-After.")
    rate_limit_burst_seconds: float = Field(
        default=2.0, gt=0, description="A key's bucket holds this many seconds of its rate: the burst it "
        "may send at once after a quiet spell.")
    artifact_cache_bytes: int = Field(
        default=2**30, ge=1, description="Bytes of hot profile states one API process keeps (per replica): "
        "parameters, plus the composed rows of hot AoT profiles; least recently used states are evicted "
        "beyond it, a state larger than it is served but not kept.")
    artifact_cache_entries: int | None = Field(
        default=None, ge=1, description="Deprecated: memory is bounded by artifact_cache_bytes. If set, also "
        "at most this many states are kept.")
    artifact_cache_composed_rows: bool = Field(
        default=True, description="Keep the composed bias rows of hot AoT profiles in the artifact cache "
        "(within its bytes), so a hot AoT profile is not recomposed from its factors every forward.")
    pinned_profiles: str = Field(
        default="", description="Profile ids, comma-separated, that every API process keeps in its artifact "
        "cache and never evicts; loaded at start-up (when preload_model is on), their bytes count against "
        "artifact_cache_bytes, and a process whose pins exceed it refuses to start.")
    max_upload_bytes: int = Field(default=32 * 2**20, description="Largest accepted upload (413 beyond).")
    max_json_bytes: int = Field(default=2 * 2**20, description="Largest accepted body of any other request "
                                "(JSON; 413 beyond): 1,024 predict items of 2,000 characters fit.")
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve /metrics on this port of its own (at metrics_host) "
        "instead of the API's; the API's /metrics then answers 404.")
    metrics_host: str = Field(default="127.0.0.1", description="Address of the metrics port (0.0.0.0: every "
                              "interface, e.g. in a container).")
    metrics_require_key: bool = Field(
        default=False, description="The API's /metrics needs an admin key (Authorization: Bearer), as "
        "Prometheus sends with `authorization: {credentials: …}`.")
    bootstrap_admin_key: str | None = Field(
        default=None, min_length=20, description="An admin key to store when the database has no live admin key "
        "yet (`profilekit db upgrade` and `serve` honour it at start), so a deployment has its first key without "
        "a shell; later keys come from it (POST /v1/keys). Generate one: `python -c 'import secrets; "
        "print(\"pk_\" + secrets.token_urlsafe(24))'`.")
    # stopping
    drain_seconds: float = Field(
        default=2.0, ge=0, le=300, description="On SIGTERM the API answers /readyz with 503 at once and keeps "
        "serving this long, so a load balancer stops sending before the port closes.")
    shutdown_timeout_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="Then requests in flight get this long to finish before the "
        "API exits anyway.")

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _not_the_example(cls, key: str | None) -> str | None:
        if key is not None and "CHANGE_ME" in key:
            raise ValueError("still the placeholder of infra/profilekit.env.example: generate a key of your own")
        return key

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'profilekit.sqlite').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def pinned_profile_ids(self) -> list[str]:
        return [p.strip() for p in self.pinned_profiles.split(",") if p.strip()]

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.broker_url is None


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment; a bad value raises SettingsError naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_problem(e) for e in exc.errors())) from None


SECRET = {"bootstrap_admin_key", "database_url", "broker_url"}  # may hold a key or a password: never echoed


def _problem(error: dict) -> str:
    if not error["loc"]:
        return f"the PROFILEKIT_* settings: {error['msg']}"
    name = str(error["loc"][0])
    shown = "" if name in SECRET else f"={error['input']!r}"
    return f"PROFILEKIT_{name.upper()}{shown}: {error['msg']}"
