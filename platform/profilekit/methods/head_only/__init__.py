"""head_only: the baseline that trains only a per-profile head on the frozen backbone."""

from profilekit.methods.head_only.config import HeadOnlyConfig
from profilekit.methods.registry import register_method

register_method("head_only", HeadOnlyConfig, state="HeadOnlyState")
