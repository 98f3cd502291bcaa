"""AoT artifacts: the factors only (FC: W1, b1, W2, b2; Kronecker: W_L, W_M, W_R) as float32
safetensors in the payload, L·(2dr + r + d) resp. L·((a + b)·r + r²·d) floats; head and header in the
extras. A fused |V|×d table per layer is never stored."""

from __future__ import annotations

from profilekit.methods.aot.config import AoTFCConfig, AoTKronConfig
from profilekit.methods.aot.layer import AoTFCState, AoTKronState
from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors

FACTORS = {"aot_fc": ("w1", "b1", "w2", "b2"), "aot_kron": ("w_left", "w_mid", "w_right")}
CLASSES = {"aot_fc": (AoTFCState, AoTFCConfig), "aot_kron": (AoTKronState, AoTKronConfig)}


def save(state: AoTFCState | AoTKronState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, FACTORS[state.method])


def load(artifact: Artifact, ctx: EngineContext) -> AoTFCState | AoTKronState:
    return load_factors(artifact, ctx, *CLASSES[artifact.method], FACTORS[artifact.method])
