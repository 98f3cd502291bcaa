"""single_adapter: one Pfeiffer adapter and a head per profile (the `adapters` library's SeqBn)."""

from profilekit.methods.registry import register_method
from profilekit.methods.single_adapter.config import SingleAdapterConfig

register_method("single_adapter", SingleAdapterConfig, state="SingleAdapterState")
