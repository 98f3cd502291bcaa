"""AoT P-Tuning (METHODS.md §3): token biases before every layer, fully connected or Kronecker factors."""

from profilekit.methods.aot.config import AoTFCConfig, AoTKronConfig
from profilekit.methods.registry import register_method

register_method("aot_fc", AoTFCConfig, state="AoTFCState", tiny={"rank": 4})
register_method("aot_kron", AoTKronConfig, state="AoTKronState", tiny={"rank": 3})
