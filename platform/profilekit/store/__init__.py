from profilekit.store.models import Artifact, Base, Example, Job, JobEvent, Pool, Profile
from profilekit.store.session import make_engine, make_session_factory

__all__ = ["Artifact", "Base", "Example", "Job", "JobEvent", "Pool", "Profile", "make_engine",
           "make_session_factory"]
