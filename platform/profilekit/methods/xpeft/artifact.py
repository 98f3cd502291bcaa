"""X-PEFT artifacts. Hard masks: a small header (pool hash, N, k, L) then two bitarrays per layer,
exactly 2·⌈N/8⌉·L bytes of mask payload. Soft masks: float32 logits, 2·N·L·4 bytes. LayerNorm and
head tensors, when per profile, go in the extras and are counted separately."""

from __future__ import annotations

import math
import struct
from dataclasses import replace

import numpy as np
import torch
from bitarray import bitarray
from torch import nn

from profilekit.errors import ArtifactError
from profilekit.methods.base import (
    Artifact,
    EngineContext,
    base_header,
    head_tensors,
    read_header,
    restore_head,
    write_extras,
)
from profilekit.methods.xpeft.config import XPeftConfig
from profilekit.methods.xpeft.layer import XPeftState, selection

HARD_MAGIC, SOFT_MAGIC = b"PKXH", b"PKXS"
_HEADER = struct.Struct("<4sB32sIIH")  # magic, version, pool sha256, N, k, L
HEADER_BYTES = _HEADER.size


def hard_mask_bytes(num_adapters: int, num_layers: int) -> int:
    """Mask payload of one hard-mask profile: two bit arrays of N bits per layer."""
    return 2 * math.ceil(num_adapters / 8) * num_layers


def encode_hard(selected: torch.Tensor, pool_hash: str, k: int) -> bytes:
    """selected: [L, 2, N] bool with exactly k set per (layer, A/B)."""
    L, _, N = selected.shape
    out = bytearray(_HEADER.pack(HARD_MAGIC, 1, bytes.fromhex(pool_hash), N, k, L))
    for row in selected.reshape(L * 2, N).tolist():
        bits = bitarray(row, endian="little")
        bits.fill()  # pad to whole bytes with zeros
        out += bits.tobytes()
    return bytes(out)


def decode_header(payload: bytes) -> tuple[bytes, str, int, int, int]:
    if len(payload) < HEADER_BYTES:
        raise ArtifactError(f"X-PEFT payload of {len(payload)} bytes is shorter than its {HEADER_BYTES}-byte header")
    magic, version, pool_hash, n, k, layers = _HEADER.unpack(payload[:HEADER_BYTES])
    if magic not in (HARD_MAGIC, SOFT_MAGIC) or version != 1:
        raise ArtifactError(f"not an X-PEFT payload (magic {magic!r}, version {version})")
    return magic, pool_hash.hex(), n, k, layers


def decode_hard(payload: bytes, *, pool_hash: str, num_layers: int) -> tuple[torch.Tensor, int]:
    """→ ([L, 2, N] bool, k), refusing another pool, wrong lengths or a popcount other than k."""
    magic, stored_hash, n, k, layers = decode_header(payload)
    if magic != HARD_MAGIC:
        raise ArtifactError("payload holds soft masks, not hard masks")
    if stored_hash != pool_hash:
        raise ArtifactError(f"hard mask belongs to pool {stored_hash[:12]}…, not to {pool_hash[:12]}…")
    if layers != num_layers:
        raise ArtifactError(f"hard mask has {layers} layers, the backbone has {num_layers}")
    per_row = math.ceil(n / 8)
    body = payload[HEADER_BYTES:]
    if len(body) != hard_mask_bytes(n, layers):
        raise ArtifactError(f"hard mask payload is {len(body)} bytes, expected 2·⌈{n}/8⌉·{layers} = "
                            f"{hard_mask_bytes(n, layers)}")
    rows = np.frombuffer(body, dtype=np.uint8).reshape(2 * layers, per_row)
    bits = np.unpackbits(rows, axis=1, bitorder="little").astype(bool)  # [2L, 8·⌈N/8⌉], bit j of row i
    padded = bits[:, n:].any(axis=1)
    if padded.any():
        raise ArtifactError(f"hard mask row {int(padded.argmax())} sets padding bits beyond N={n}")
    counts = bits[:, :n].sum(axis=1)
    if (counts != k).any():
        i = int((counts != k).argmax())
        raise ArtifactError(f"hard mask layer {i // 2} ({'AB'[i % 2]}) has {counts[i]} bits set, expected k={k}")
    return torch.from_numpy(np.ascontiguousarray(bits[:, :n])).reshape(layers, 2, n), k


def save(state: XPeftState, ctx: EngineContext) -> Artifact:
    config: XPeftConfig = state.config
    logits = state.mask_logits.detach().cpu()
    L, _, N = logits.shape
    if config.mask == "hard":
        payload = encode_hard(selection(logits, config.k), state.pool_hash, config.k)
    else:
        header = _HEADER.pack(SOFT_MAGIC, 1, bytes.fromhex(state.pool_hash), N, 0, L)
        payload = header + logits.float().contiguous().numpy().tobytes()
    tensors = head_tensors(state)
    if state.ln_weight is not None:
        tensors |= {"ln_weight": state.ln_weight, "ln_bias": state.ln_bias}
    extras = write_extras(tensors, base_header(state.method, state, ctx, pool_hash=state.pool_hash))
    return Artifact(state.method, payload, extras)


def load(artifact: Artifact, ctx: EngineContext) -> XPeftState:
    tensors, header = read_header(artifact, ctx)
    config = XPeftConfig(**header["config"])
    pool = ctx.pools.get(header["pool_hash"])
    if pool is None:
        raise ArtifactError(f"artifact belongs to pool {header['pool_hash'][:12]}…, which the engine does not "
                            f"serve (it serves {', '.join(h[:12] + '…' for h in ctx.pools) or 'no pool'})")
    state = XPeftState(config, replace(ctx, pool=pool), tuple(header["labels"]), generator=None)
    L, N = ctx.num_layers, pool.num_adapters
    if config.mask == "hard":
        selected, k = decode_hard(artifact.payload, pool_hash=pool.pool_hash, num_layers=L)
        if k != config.k or selected.shape[-1] != N:
            raise ArtifactError(f"hard mask has k={k}, N={selected.shape[-1]}; config says k={config.k}, pool N={N}")
        logits = selected  # bool: composed as k-hot / k, exactly the stored selection
    else:
        _, stored_hash, n, _, layers = decode_header(artifact.payload)
        body = artifact.payload[HEADER_BYTES:]
        if (n, layers) != (N, L) or len(body) != 2 * N * L * 4:
            raise ArtifactError(f"soft mask payload is {len(body)} bytes for N={n}, L={layers}; "
                                f"expected {2 * N * L * 4} for N={N}, L={L}")
        logits = torch.frombuffer(bytearray(body), dtype=torch.float32).reshape(L, 2, N)
    state.mask_logits = nn.Parameter(logits, requires_grad=logits.is_floating_point())
    if config.layer_norm:
        state.ln_weight = nn.Parameter(tensors["ln_weight"])
        state.ln_bias = nn.Parameter(tensors["ln_bias"])
    restore_head(state, tensors)
    return state if ctx.device.type == "cpu" else state.to(ctx.device)  # built on the CPU
