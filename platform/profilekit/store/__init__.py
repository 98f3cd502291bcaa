from profilekit.store.models import (
    ApiKey,
    Artifact,
    Base,
    Example,
    Job,
    JobEvent,
    KeySession,
    Pool,
    PoolChunk,
    Profile,
    TenantPool,
    Worker,
)
from profilekit.store.session import make_engine, make_session_factory

__all__ = ["ApiKey", "Artifact", "Base", "Example", "Job", "JobEvent", "KeySession", "Pool", "PoolChunk", "Profile",
           "TenantPool", "Worker", "make_engine", "make_session_factory"]
