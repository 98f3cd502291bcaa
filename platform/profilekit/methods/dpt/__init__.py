"""DPT (METHODS.md §5): a soft prompt written as a low-rank product P = U·V."""

from profilekit.methods.dpt.config import DPTConfig
from profilekit.methods.registry import register_method

register_method("dpt", DPTConfig, state="DPTState", tiny={"length": 5, "bottleneck": 3})
