from __future__ import annotations

from dataclasses import dataclass

from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class HeadOnlyConfig(MethodConfig):
    """Baseline: train only a per-profile classification head on the frozen backbone."""
