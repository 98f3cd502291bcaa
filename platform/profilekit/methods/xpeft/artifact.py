"""X-PEFT artifacts (version 2). The payload holds everything a profile on a shared head needs, so such
a profile is a few hundred bytes:

    header      magic (PKXH hard, PKXS soft), version, pool sha256, N, k, L, flags       48 bytes
    masks       hard: two bit arrays of N bits per layer, 2·⌈N/8⌉·L bytes; soft: 2·N·L float32
    labels      shared head: one bit per label of the pool's shared head (the labels it scores)
    prior       flags SHARED_HEAD and PRIOR: one float per scored label
    head delta  flag DELTA (with SHARED_HEAD and PRIOR): one byte r, then u [C, r], then v [r, d] floats
                (with flag INT8, v is r float16 scales then r·d int8: row i is q[i] · scale[i])
    layer norm  flag LAYER_NORM: ln_weight then ln_bias, 2·L·b floats

The floats after the masks are float32, or float16 with flag HALF (they load back as float32); soft
masks stay float32. INT8 comes with HALF (stored_dtype int8). Artifacts without DELTA, HALF and INT8
read exactly as before those flags existed.

A profile with its own head keeps the head and its label names in the extras (safetensors). The
pool hash pins the backbone (a pool is built for one). Version 1 artifacts (LayerNorm, head and a
JSON header in the extras) are still read."""

from __future__ import annotations

import json
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
    head_tensors,
    read_extras,
    read_header,
    restore_head,
    write_extras,
)
from profilekit.methods.xpeft.config import XPeftConfig
from profilekit.methods.xpeft.layer import XPeftState, selection

HARD_MAGIC, SOFT_MAGIC = b"PKXH", b"PKXS"
VERSION = 2
_HEADER = struct.Struct("<4sB32sIIHB")  # magic, version, pool sha256, N, k, L, flags
_HEADER_V1 = struct.Struct("<4sB32sIIH")  # version 1: no flags
HEADER_BYTES = _HEADER.size
LAYER_NORM, SHARED_HEAD, PRIOR, DELTA, HALF, INT8 = 1, 2, 4, 8, 16, 32  # flags
KNOWN_FLAGS = LAYER_NORM | SHARED_HEAD | PRIOR | DELTA | HALF | INT8
STORED_FLAGS = {"float32": 0, "float16": HALF, "int8": HALF | INT8}


def hard_mask_bytes(num_adapters: int, num_layers: int) -> int:
    """Mask payload of one hard-mask profile: two bit arrays of N bits per layer."""
    return 2 * math.ceil(num_adapters / 8) * num_layers


def encode_hard(selected: torch.Tensor, pool_hash: str, k: int, flags: int = 0) -> bytes:
    """The header and masks; selected: [L, 2, N] bool with exactly k set per (layer, A/B)."""
    L, _, N = selected.shape
    out = bytearray(_HEADER.pack(HARD_MAGIC, VERSION, bytes.fromhex(pool_hash), N, k, L, flags))
    for row in selected.reshape(L * 2, N).tolist():
        bits = bitarray(row, endian="little")
        bits.fill()  # pad to whole bytes with zeros
        out += bits.tobytes()
    return bytes(out)


def decode_header(payload: bytes) -> tuple[bytes, int, str, int, int, int, int]:
    """→ (magic, version, pool hash, N, k, L, flags)."""
    if len(payload) < _HEADER_V1.size:
        raise ArtifactError(f"X-PEFT payload of {len(payload)} bytes is shorter than its header")
    magic, version = payload[:4], payload[4]
    if magic not in (HARD_MAGIC, SOFT_MAGIC) or version not in (1, VERSION):
        raise ArtifactError(f"not an X-PEFT payload (magic {magic!r}, version {version})")
    if version == 1:
        _, _, pool_hash, n, k, layers = _HEADER_V1.unpack(payload[:_HEADER_V1.size])
        return magic, version, pool_hash.hex(), n, k, layers, 0
    if len(payload) < HEADER_BYTES:
        raise ArtifactError(f"X-PEFT payload of {len(payload)} bytes is shorter than its {HEADER_BYTES}-byte header")
    _, _, pool_hash, n, k, layers, flags = _HEADER.unpack(payload[:HEADER_BYTES])
    return magic, version, pool_hash.hex(), n, k, layers, flags


def decode_hard(payload: bytes, *, pool_hash: str, num_layers: int, tail: int = 0) -> tuple[torch.Tensor, int]:
    """→ ([L, 2, N] bool, k), refusing another pool, wrong lengths (`tail`: the bytes expected after
    the masks) or a popcount other than k."""
    magic, version, stored_hash, n, k, layers, _ = decode_header(payload)
    if magic != HARD_MAGIC:
        raise ArtifactError("payload holds soft masks, not hard masks")
    if stored_hash != pool_hash:
        raise ArtifactError(f"hard mask belongs to pool {stored_hash[:12]}…, not to {pool_hash[:12]}…")
    if layers != num_layers:
        raise ArtifactError(f"hard mask has {layers} layers, the backbone has {num_layers}")
    start = HEADER_BYTES if version == VERSION else _HEADER_V1.size
    size = hard_mask_bytes(n, layers)
    if len(payload) - start != size + tail:
        raise ArtifactError(f"hard mask payload is {len(payload) - start} bytes, expected 2·⌈{n}/8⌉·{layers} = "
                            f"{size}" + (f" and {tail} more" if tail else ""))
    rows = np.frombuffer(payload[start:start + size], dtype=np.uint8).reshape(2 * layers, math.ceil(n / 8))
    bits = np.unpackbits(rows, axis=1, bitorder="little").astype(bool)  # [2L, 8·⌈N/8⌉], bit j of row i
    padded = bits[:, n:].any(axis=1)
    if padded.any():
        raise ArtifactError(f"hard mask row {int(padded.argmax())} sets padding bits beyond N={n}")
    counts = bits[:, :n].sum(axis=1)
    if (counts != k).any():
        i = int((counts != k).argmax())
        raise ArtifactError(f"hard mask layer {i // 2} ({'AB'[i % 2]}) has {counts[i]} bits set, expected k={k}")
    return torch.from_numpy(np.ascontiguousarray(bits[:, :n])).reshape(layers, 2, n), k


def _floats(tensor: torch.Tensor, dtype: torch.dtype = torch.float32) -> bytes:
    stored = tensor.detach().to("cpu", dtype).contiguous()
    if dtype == torch.float16 and not torch.isfinite(stored).all() and torch.isfinite(tensor).all():
        raise ValueError(f"a {tuple(tensor.shape)} tensor of the profile overflows float16; store it as float32")
    return stored.numpy().tobytes()


def _int8_rows(tensor: torch.Tensor) -> bytes:
    """A [r, d] block as r float16 scales (each row's largest magnitude ÷ 127), then r·d int8."""
    rows = tensor.detach().to("cpu", torch.float32)
    scale = (rows.abs().amax(dim=1, keepdim=True) / 127).half()
    if not torch.isfinite(scale).all():
        raise ValueError(f"a {tuple(rows.shape)} tensor of the profile overflows its float16 scale")
    quantized = (rows / scale.float().clamp_min(torch.finfo(torch.float16).tiny)).round().clamp(-127, 127)
    return scale.numpy().tobytes() + quantized.to(torch.int8).numpy().tobytes()


def save(state: XPeftState, ctx: EngineContext) -> Artifact:
    config: XPeftConfig = state.config
    logits = state.mask_logits.detach().cpu()
    L, _, N = logits.shape
    flags = (LAYER_NORM if config.layer_norm else 0) | (SHARED_HEAD if state.shared_head else 0) | \
        (PRIOR if config.prior else 0) | \
        (DELTA if state.delta_u is not None else 0) | STORED_FLAGS[config.stored_dtype]
    # the prior itself is stored only with the shared head
    dtype = torch.float16 if flags & HALF else torch.float32
    if config.mask == "hard":
        payload = encode_hard(selection(logits, config.k), state.pool_hash, config.k, flags)
    else:
        payload = _HEADER.pack(SOFT_MAGIC, VERSION, bytes.fromhex(state.pool_hash), N, 0, L, flags) + _floats(logits)
    if state.shared_head:
        scored = bitarray(len(ctx.pools[state.pool_hash].head.labels), endian="little")
        scored.setall(0)
        for row in state.label_rows.tolist():
            scored[row] = 1
        scored.fill()
        payload += scored.tobytes()
    if state.prior is not None:
        payload += _floats(state.prior, dtype)
    if state.delta_u is not None:
        v = _int8_rows(state.delta_v) if flags & INT8 else _floats(state.delta_v, dtype)
        payload += bytes([state.delta_u.shape[1]]) + _floats(state.delta_u, dtype) + v
    if config.layer_norm:
        payload += _floats(state.ln_weight, dtype) + _floats(state.ln_bias, dtype)
    extras = b"" if state.shared_head else write_extras(head_tensors(state), {"labels": list(state.labels)})
    return Artifact(state.method, payload, extras)


class _Reader:
    """Reads float blocks (float32, or float16 returned as float32) off the payload after the masks,
    refusing a length that does not add up."""

    def __init__(self, payload: bytes, start: int, dtype: torch.dtype = torch.float32):
        self.payload, self.at, self.dtype = payload, start, dtype

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.payload):
            raise ArtifactError(f"X-PEFT payload truncated: {len(self.payload)} bytes, its flags need more")
        self.at += count
        return self.payload[self.at - count:self.at]

    def floats(self, *shape: int) -> nn.Parameter:
        block = self.take(self.dtype.itemsize * math.prod(shape))
        return nn.Parameter(torch.frombuffer(bytearray(block), dtype=self.dtype).reshape(shape).float())

    def int8_rows(self, rows: int, width: int) -> nn.Parameter:
        scale = torch.frombuffer(bytearray(self.take(2 * rows)), dtype=torch.float16).float().reshape(rows, 1)
        quantized = torch.frombuffer(bytearray(self.take(rows * width)), dtype=torch.int8).reshape(rows, width)
        return nn.Parameter(quantized.float() * scale)


def load(artifact: Artifact, ctx: EngineContext) -> XPeftState:
    magic, version, pool_hash, n, k, layers, flags = decode_header(artifact.payload)
    if version == 1:
        return _load_v1(artifact, ctx)
    pool = _served_pool(ctx, pool_hash)
    L, N, b = ctx.num_layers, pool.num_adapters, pool.bottleneck
    if (n, layers) != (N, L):
        raise ArtifactError(f"X-PEFT payload is for N={n}, L={layers}; pool {pool_hash[:12]}… has N={N}, L={L}")
    shared = bool(flags & SHARED_HEAD)
    if flags & ~KNOWN_FLAGS:
        raise ArtifactError(f"X-PEFT payload has unknown flags {flags & ~KNOWN_FLAGS:#x}")
    if flags & DELTA and not (shared and flags & PRIOR):
        raise ArtifactError("X-PEFT payload has a head delta without the shared head and its prior")
    if flags & INT8 and not flags & HALF:
        raise ArtifactError("X-PEFT payload has flag INT8 without HALF")
    stored_dtype = next(name for name, bits in STORED_FLAGS.items() if flags & (HALF | INT8) == bits)
    config = XPeftConfig(mask="hard" if magic == HARD_MAGIC else "soft", **({"k": k} if magic == HARD_MAGIC else {}),
                         layer_norm=bool(flags & LAYER_NORM), head="shared" if shared else "profile",
                         prior=bool(flags & PRIOR), stored_dtype=stored_dtype)
    mask_size = hard_mask_bytes(N, L) if magic == HARD_MAGIC else 2 * N * L * 4
    reader = _Reader(artifact.payload, HEADER_BYTES + mask_size, torch.float16 if flags & HALF else torch.float32)
    if shared:
        if pool.head is None:
            raise ArtifactError(f"artifact scores with the shared head of pool {pool_hash[:12]}…, which has none")
        scored = bitarray(endian="little")
        scored.frombytes(reader.take(math.ceil(len(pool.head.labels) / 8)))
        labels = tuple(y for y, bit in zip(pool.head.labels, scored, strict=False) if bit)
        tensors = {}
    else:
        tensors, metadata = read_extras(artifact.extras)
        labels = tuple(json.loads(metadata["header"])["labels"])
    state = XPeftState(config, replace(ctx, pool=pool), labels, generator=None)
    if state.shared_head and config.prior:
        state.prior = reader.floats(len(labels))
    if flags & DELTA:
        r = reader.take(1)[0]
        if not 1 <= r <= 16:
            raise ArtifactError(f"X-PEFT payload has a head delta of rank {r}, expected 1 to 16")
        state.config = replace(config, head_delta_rank=r)
        state.delta_u = reader.floats(len(labels), r)
        state.delta_v = reader.int8_rows(r, ctx.hidden_size) if flags & INT8 else reader.floats(r, ctx.hidden_size)
    if config.layer_norm:
        state.ln_weight, state.ln_bias = reader.floats(L, b), reader.floats(L, b)
    if magic == HARD_MAGIC:
        selected, _ = decode_hard(artifact.payload, pool_hash=pool.pool_hash, num_layers=L,
                                  tail=reader.at - HEADER_BYTES - mask_size)
        state.mask_logits = nn.Parameter(selected, requires_grad=False)  # bool: composed as k-hot / k
    else:
        state.mask_logits = _Reader(artifact.payload, HEADER_BYTES).floats(L, 2, N)
    if reader.at != len(artifact.payload):
        raise ArtifactError(f"X-PEFT payload has {len(artifact.payload) - reader.at} bytes more than its flags say")
    restore_head(state, tensors)
    return state if ctx.device.type == "cpu" else state.to(ctx.device)  # built on the CPU


def _served_pool(ctx: EngineContext, pool_hash: str):
    pool = ctx.pools.get(pool_hash)
    if pool is None:
        raise ArtifactError(f"artifact belongs to pool {pool_hash[:12]}…, which the engine does not "
                            f"serve (it serves {', '.join(h[:12] + '…' for h in ctx.pools) or 'no pool'})")
    return pool


def _load_v1(artifact: Artifact, ctx: EngineContext) -> XPeftState:
    """Version 1: masks alone in the payload; LayerNorm, head and a JSON header (config, labels) in the extras."""
    tensors, header = read_header(artifact, ctx)
    config = XPeftConfig(**header["config"])
    pool = _served_pool(ctx, header["pool_hash"])
    state = XPeftState(config, replace(ctx, pool=pool), tuple(header["labels"]), generator=None)
    L, N = ctx.num_layers, pool.num_adapters
    if config.mask == "hard":
        selected, _ = decode_hard(artifact.payload, pool_hash=pool.pool_hash, num_layers=L)
        state.mask_logits = nn.Parameter(selected, requires_grad=False)
    else:
        body = artifact.payload[_HEADER_V1.size:]
        if len(body) != 2 * N * L * 4:
            raise ArtifactError(f"soft mask payload is {len(body)} bytes; expected {2 * N * L * 4} for N={N}, L={L}")
        state.mask_logits = nn.Parameter(torch.frombuffer(bytearray(body), dtype=torch.float32).reshape(L, 2, N))
    if config.layer_norm:
        state.ln_weight = nn.Parameter(tensors["ln_weight"])
        state.ln_bias = nn.Parameter(tensors["ln_bias"])
    restore_head(state, tensors)
    return state if ctx.device.type == "cpu" else state.to(ctx.device)
