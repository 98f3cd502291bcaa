"""Typed errors of the library. Each message names what is wrong."""


class ProfilekitError(Exception):
    """Base of every error raised on purpose by profilekit."""


class SettingsError(ProfilekitError, ValueError):
    """An environment setting (PROFILEKIT_*) is invalid; the message names the variable and its value."""


class BackboneError(ProfilekitError):
    """The encoder folder is missing or is not a supported BERT/RoBERTa-style encoder."""


class PoolError(ProfilekitError):
    """A pool cannot be built, loaded or imported."""


class PoolStoreError(PoolError):
    """A trained pool's stored bytes cannot be written or read: missing, corrupt (their sha256 differs from
    the recorded one), or the store (database, S3) refused or is unreachable. The message names the uri.
    Never the client's error: the API answers 503."""


class ArtifactError(ProfilekitError):
    """An artifact's bytes are malformed or belong to another pool or backbone."""


class TrainingDataError(ProfilekitError):
    """A profile's examples cannot be trained on (too few rows, one label, empty texts, …)."""


class UntrainableProfiles(TrainingDataError):
    """A job names profiles it could not train. `profiles` lists {"id", "rows", "labels", "reason"} of each."""

    def __init__(self, message: str, profiles: list[dict] | None = None):
        super().__init__(message)
        self.profiles = profiles or []


class UnknownMethodError(ProfilekitError):
    """No method is registered under that name."""


class ConfigError(ProfilekitError, ValueError):
    """A method config is invalid or does not fit the backbone (e.g. a Kronecker table smaller than |V|)."""


class BatchError(ProfilekitError, ValueError):
    """A batch cannot be run as given (e.g. a prompt pushes a row past the backbone's positions)."""


class NotFound(ProfilekitError):
    """No such profile, job or pool (for this caller). `ids` lists the missing ones when several were asked."""

    def __init__(self, message: str, ids: list[str] | None = None):
        super().__init__(message)
        self.ids = ids or []


class NotTrained(ProfilekitError):
    """Profiles exist but have no trained artifact yet. `profiles` lists {"id", "state"} of each."""

    def __init__(self, message: str, profiles: list[dict] | None = None):
        super().__init__(message)
        self.profiles = profiles or []


class Conflict(ProfilekitError):
    """The request collides with what is stored (e.g. an external id already in use)."""


class IdempotencyConflict(ProfilekitError):
    """The idempotency key was used before with a different request."""


class AttemptLost(ProfilekitError):
    """This worker's attempt at a job is no longer the job's current one (its heartbeat went stale and
    the job was re-queued, or it ended): whatever the attempt computed is dropped, never stored."""


class ServingConfigError(ProfilekitError):
    """This process's serving settings cannot be honoured (e.g. pinned profiles that are unknown): an
    operator's error, never a client's (HTTP 503)."""


class CacheBudgetError(ServingConfigError):
    """Pinned profiles would need more bytes than the artifact cache's budget."""
