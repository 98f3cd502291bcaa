"""Methods: one folder each (config.py, layer.py, artifact.py), registered by name. Importing this
package loads no torch; the math loads when a method is first used."""

from profilekit.methods.config import MethodConfig
from profilekit.methods.registry import MethodSpec, get_method, method_names, parse_overrides, register_method

__all__ = ["MethodConfig", "MethodSpec", "get_method", "method_names", "parse_overrides", "register_method"]
