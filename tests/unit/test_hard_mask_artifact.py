import math

import pytest
import torch

from profilekit.errors import ArtifactError
from profilekit.methods.base import Artifact
from profilekit.methods.xpeft.artifact import HEADER_BYTES, decode_hard, encode_hard, hard_mask_bytes


def selection(L=6, N=100, k=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, 2, N, generator=g)
    index = logits.topk(k, dim=-1).indices
    return torch.zeros(L, 2, N, dtype=torch.bool).scatter_(-1, index, True)


HASH = "ab" * 32


@pytest.mark.parametrize("L,N,k", [(6, 100, 50), (12, 100, 50), (2, 13, 1), (6, 400, 50), (3, 8, 8)])
def test_round_trip_is_exact_and_payload_size_is_two_bitarrays_per_layer(L, N, k):
    selected = selection(L, N, k)
    payload = encode_hard(selected, HASH, k)
    assert len(payload) - HEADER_BYTES == 2 * math.ceil(N / 8) * L == hard_mask_bytes(N, L)
    decoded, decoded_k = decode_hard(payload, pool_hash=HASH, num_layers=L)
    assert decoded_k == k and torch.equal(decoded, selected)


def test_paper_sizes():
    assert hard_mask_bytes(100, 6) == 156 and hard_mask_bytes(100, 12) == 312


def test_mask_of_another_pool_is_refused():
    payload = encode_hard(selection(), HASH, 50)
    with pytest.raises(ArtifactError, match="belongs to pool"):
        decode_hard(payload, pool_hash="cd" * 32, num_layers=6)


def test_wrong_length_is_refused():
    payload = encode_hard(selection(), HASH, 50)
    with pytest.raises(ArtifactError, match="expected"):
        decode_hard(payload[:-1], pool_hash=HASH, num_layers=6)
    with pytest.raises(ArtifactError, match="layers"):
        decode_hard(payload, pool_hash=HASH, num_layers=12)


def test_popcount_other_than_k_is_refused():
    payload = bytearray(encode_hard(selection(), HASH, 50))
    byte = HEADER_BYTES + 3
    payload[byte] ^= 0xFF if payload[byte] in (0, 0xFF) else (payload[byte] & -payload[byte])  # change bits
    with pytest.raises(ArtifactError, match="bits set, expected k=50"):
        decode_hard(bytes(payload), pool_hash=HASH, num_layers=6)


def test_garbage_is_not_an_artifact():
    with pytest.raises(ArtifactError):
        Artifact.from_bytes(b"hello world")
    with pytest.raises(ArtifactError):
        decode_hard(b"PKXH", pool_hash=HASH, num_layers=6)
