from profilekit.methods.base import Artifact, EngineContext, MethodConfig, ProfileState
from profilekit.methods.registry import MethodSpec, get_method, method_names, register_method

__all__ = ["Artifact", "EngineContext", "MethodConfig", "MethodSpec", "ProfileState", "get_method",
           "method_names", "register_method"]
