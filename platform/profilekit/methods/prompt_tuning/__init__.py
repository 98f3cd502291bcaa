"""Prompt tuning: a soft prompt after [CLS], initialised from sampled vocabulary embeddings."""

from profilekit.methods.prompt_tuning.config import PromptTuningConfig
from profilekit.methods.registry import register_method

register_method("prompt_tuning", PromptTuningConfig, state="PromptTuningState", tiny={"length": 4})
