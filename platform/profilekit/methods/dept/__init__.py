"""DePT (METHODS.md §4): a short soft prompt and a low-rank update of the input word embeddings."""

from profilekit.methods.dept.config import DePTConfig
from profilekit.methods.registry import register_method

register_method("dept", DePTConfig, state="DePTState", tiny={"prompt_length": 3, "rank": 2, "max_length": 32})
