"""X-PEFT (METHODS.md §2): hard (k-hot bits) or soft masks over the shared pool."""

from profilekit.methods.registry import register_method
from profilekit.methods.xpeft.config import XPeftConfig

register_method("xpeft_hard", XPeftConfig, state="XPeftState", uses_pool=True, preset={"mask": "hard"},
                tiny={"k": 3})
register_method("xpeft_soft", XPeftConfig, state="XPeftState", uses_pool=True, preset={"mask": "soft"})
