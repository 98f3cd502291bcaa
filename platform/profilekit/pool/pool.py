"""The shared pool: N Pfeiffer adapters per layer stored as four stacked tensors.

A pool is immutable and identified by the sha256 of its content (`pool_hash`). A random pool is
regenerated bit for bit from its spec, so only the spec needs storing; trained pools (warm,
imported) are saved as safetensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from profilekit.errors import PoolError

POOL_TENSORS = ("down_w", "down_b", "up_w", "up_b")


@dataclass(frozen=True)
class PoolSpec:
    backbone_id: str = field(metadata={"help": "Identity of the encoder the pool belongs to."})
    num_adapters: int = field(metadata={"help": "N, adapters per layer."})
    num_layers: int = field(metadata={"help": "L, transformer layers of the backbone."})
    hidden_size: int = field(metadata={"help": "d, hidden size of the backbone."})
    reduction_factor: int = field(default=16, metadata={"help": "b = d / reduction_factor (SeqBnConfig: 16)."})
    seed: int = field(default=0, metadata={"help": "Seed of a random pool."})
    init_std: float = field(
        default=0.1,
        metadata={"help": "Std of a random pool's weights. A k-hot mask averages k adapters, shrinking the "
                  "composed adapter by about sqrt(k); 0.1 keeps its contribution measurable."},
    )
    source: str = field(default="random", metadata={"help": "random, warm or imported."})

    def __post_init__(self):
        if self.num_adapters < 1:
            raise PoolError(f"a pool needs at least one adapter per layer, got N={self.num_adapters}")
        if self.source not in ("random", "warm", "imported"):
            raise PoolError(f"unknown pool source {self.source!r}")

    @property
    def bottleneck(self) -> int:
        return max(1, self.hidden_size // self.reduction_factor)


@dataclass(frozen=True)
class SharedHead:
    """A classification head trained with a warm pool and shared by its profiles."""

    weight: torch.Tensor  # [C, d]
    bias: torch.Tensor  # [C]
    labels: tuple[str, ...]


@dataclass
class AdapterPool:
    spec: PoolSpec
    down_w: torch.Tensor  # [L, N, d, b]
    down_b: torch.Tensor  # [L, N, b]
    up_w: torch.Tensor  # [L, N, b, d]
    up_b: torch.Tensor  # [L, N, d]
    head: SharedHead | None = None
    pool_hash: str = ""
    # Warm pools: [N, C] training label counts of the profile each adapter was trained on, over head.labels
    # (what each adapter knows about, for mask_init='nearest'). Training metadata: not in pool_hash.
    builder_labels: torch.Tensor | None = None

    def __post_init__(self):
        L, N, d, b = self.spec.num_layers, self.spec.num_adapters, self.spec.hidden_size, self.spec.bottleneck
        expected = {"down_w": (L, N, d, b), "down_b": (L, N, b), "up_w": (L, N, b, d), "up_b": (L, N, d)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise PoolError(f"pool tensor {name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")
        if self.builder_labels is not None and (
                self.head is None or tuple(self.builder_labels.shape) != (N, len(self.head.labels))):
            raise PoolError(f"builder_labels has shape {tuple(self.builder_labels.shape)}; it needs a shared head "
                            f"and one row per adapter over the head's labels")
        if not self.pool_hash:
            self.pool_hash = content_hash(self)

    @property
    def num_adapters(self) -> int:
        return self.spec.num_adapters

    @property
    def bottleneck(self) -> int:
        return self.spec.bottleneck

    def nbytes(self) -> int:
        tensors = [getattr(self, name) for name in POOL_TENSORS]
        if self.head is not None:
            tensors += [self.head.weight, self.head.bias]
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device, dtype=None) -> AdapterPool:
        """The same pool (same hash) with its tensors on `device` / in `dtype`."""
        moved = {name: getattr(self, name).to(device=device, dtype=dtype) for name in POOL_TENSORS}
        head = self.head
        if head is not None:
            head = SharedHead(head.weight.to(device, dtype), head.bias.to(device, dtype), head.labels)
        return AdapterPool(self.spec, **moved, head=head, pool_hash=self.pool_hash, builder_labels=self.builder_labels)


def content_hash(pool: AdapterPool) -> str:
    digest = hashlib.sha256(json.dumps(asdict(pool.spec) | {"source": "content"}, sort_keys=True).encode())
    tensors = [getattr(pool, name) for name in POOL_TENSORS]
    if pool.head is not None:
        digest.update(json.dumps(list(pool.head.labels)).encode())
        tensors += [pool.head.weight, pool.head.bias]
    for tensor in tensors:
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def random_pool(spec: PoolSpec) -> AdapterPool:
    """Regenerate a random pool from its spec: same spec, bit-identical tensors (drawn on the CPU)."""
    if spec.source != "random":
        raise PoolError(f"random_pool needs a spec with source='random', got {spec.source!r}")
    L, N, d, b = spec.num_layers, spec.num_adapters, spec.hidden_size, spec.bottleneck
    generator = torch.Generator().manual_seed(spec.seed)
    down_w = torch.randn(L, N, d, b, generator=generator) * spec.init_std
    up_w = torch.randn(L, N, b, d, generator=generator) * spec.init_std
    return AdapterPool(spec, down_w, torch.zeros(L, N, b), up_w, torch.zeros(L, N, d))


def save_pool(pool: AdapterPool, path: str | Path) -> Path:
    """Write a pool as safetensors; its hash and spec travel in the metadata."""
    path = Path(path)
    tensors = {name: getattr(pool, name).detach().cpu().contiguous() for name in POOL_TENSORS}
    metadata = {"spec": json.dumps(asdict(pool.spec)), "pool_hash": pool.pool_hash}
    if pool.head is not None:
        tensors["head_weight"] = pool.head.weight.detach().cpu().contiguous()
        tensors["head_bias"] = pool.head.bias.detach().cpu().contiguous()
        metadata["head_labels"] = json.dumps(list(pool.head.labels))
    if pool.builder_labels is not None:
        tensors["builder_labels"] = pool.builder_labels.detach().cpu().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_pool(path: str | Path) -> AdapterPool:
    """Read a saved pool and check that its content still has the hash it was saved with."""
    path = Path(path)
    if not path.is_file():
        raise PoolError(f"pool file {path} does not exist")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    tensors = load_file(str(path))
    if "spec" not in metadata:
        raise PoolError(f"{path} is not a profilekit pool file (no spec in its metadata)")
    spec = PoolSpec(**json.loads(metadata["spec"]))
    head = None
    if "head_weight" in tensors:
        head = SharedHead(tensors["head_weight"], tensors["head_bias"], tuple(json.loads(metadata["head_labels"])))
    pool = AdapterPool(spec, *(tensors[name] for name in POOL_TENSORS), head=head,
                       builder_labels=tensors.get("builder_labels"))
    if pool.pool_hash != metadata.get("pool_hash"):
        raise PoolError(f"pool file {path} is corrupt: content hash {pool.pool_hash[:12]}… "
                        f"differs from the recorded {metadata.get('pool_hash', '')[:12]}…")
    return pool
