"""What every method shares: the per-profile state, the adapter weights it hands the engine, artifacts.

A method is one folder (config.py, layer.py, artifact.py) whose __init__.py registers it; see
CONTRIBUTING.md for the checklist.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from profilekit.errors import ArtifactError
from profilekit.methods.config import MethodConfig


@dataclass
class EngineContext:
    """The facts a method needs about the serving engine: backbone shape and the pool (if any)."""

    backbone_id: str
    num_layers: int  # L
    hidden_size: int  # d
    vocab_size: int
    pool: object | None = None  # AdapterPool: the default pool of new profiles
    pools: dict = field(default_factory=dict)  # every pool this engine serves, by hash
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    embeddings: torch.Tensor | None = None  # [|V|, d] the frozen input word-embedding matrix E
    embedding_std: float = 0.0  # std of E's entries, the scale of initialisations drawn to match it

    def __post_init__(self):
        if self.embeddings is not None and not self.embedding_std:
            self.embedding_std = float(self.embeddings.detach().float().std())


@dataclass
class AdapterWeights:
    """Composed Pfeiffer adapters for P profiles, all layers, layer-major so that each layer reads one
    contiguous [P, …] block. ln_* are None where no LayerNorm is used."""

    down_w: torch.Tensor  # [L, P, d, b]
    down_b: torch.Tensor  # [L, P, b]
    up_w: torch.Tensor  # [L, P, b, d]
    up_b: torch.Tensor  # [L, P, d]
    ln_w: torch.Tensor | None = None  # [L, P, b]
    ln_b: torch.Tensor | None = None  # [L, P, b]


class ProfileState(nn.Module):
    """One profile's trainable or served parameters. `labels` are the classes its head scores."""

    method: str
    plain_backbone = False  # True: compose() never changes the backbone, so pooled rows can be cached

    @property
    def prompt_tokens(self) -> int:
        """Positions its compose() inserts before each row's text (a soft prompt); the engine serves rows
        of different prompt lengths in forwards of their own."""
        return 0

    def __init__(self, config: MethodConfig, labels: tuple[str, ...], shared_head: bool = False):
        super().__init__()
        self.config = config
        self.labels = tuple(labels)
        self.shared_head = shared_head
        self.head_weight: nn.Parameter | None = None  # [C, d]
        self.head_bias: nn.Parameter | None = None  # [C]

    def init_head(self, hidden_size: int, generator: torch.Generator) -> None:
        weight = torch.randn(len(self.labels), hidden_size, generator=generator) * 0.02
        self.head_weight = nn.Parameter(weight)
        self.head_bias = nn.Parameter(torch.zeros(len(self.labels)))

    def prepare(self, label_counts: dict[str, int], ctx: EngineContext) -> None:
        """Called once before training with the counts of its training labels: `head_init="shared"` (or
        "auto" on a warm pool) starts the own head from the pool's shared head and the log label
        frequencies."""
        head = ctx.pool.head if ctx.pool is not None else None
        if self.shared_head or self.config.head_init == "random" or (self.config.head_init == "auto" and head is None):
            return
        if head is None:
            raise ValueError("head_init='shared' needs an engine whose pool has a shared head (a warm pool)")
        self.start_head_from(head, label_counts=label_counts)

    def start_head_from(self, head, *, freeze: bool = False, label_counts: dict[str, int] | None = None,
                        train_bias: bool = False) -> None:
        """Copy the rows of this profile's labels from `head` (a SharedHead: weight [C, d], bias [C],
        labels) into its own head, plus log((count + 1) / (n + C)) per label when `label_counts` are
        given; `freeze` keeps them fixed while training, but for the bias with `train_bias` (then a
        learned label prior over a frozen head)."""
        if self.shared_head:
            raise ValueError("a profile that uses the shared head has no head of its own to start")
        missing = [label for label in self.labels if label not in head.labels]
        if missing:
            raise ValueError(f"the head to start from does not score {missing}")
        rows = [head.labels.index(label) for label in self.labels]
        device = self.head_weight.device
        bias = head.bias[rows].to(device, torch.float32).clone()
        if label_counts is not None:
            bias += log_prior(label_counts, self.labels).to(device)
        self.head_weight = nn.Parameter(head.weight[rows].to(device, torch.float32).clone(), requires_grad=not freeze)
        self.head_bias = nn.Parameter(bias, requires_grad=not freeze or train_bias)

    def scoring_head(self, ctx: EngineContext) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight [C, d] and bias [C] that score this profile's labels: its own head, or the shared
        head of its pool."""
        if self.shared_head:
            head = ctx.pools[self.pool_hash].head
            return head.weight, head.bias
        return self.head_weight, self.head_bias

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.head_weight, self.head_bias) if p is not None]

    def method_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def optimizer_groups(self) -> list[dict]:
        """AdamW parameter groups of this profile, each with its own learning rate. Default: the
        method's parameters at `lr`, the head at `head_lr`; methods with more rates override this."""
        return [{"params": [p for p in self.method_parameters() if p.requires_grad], "lr": self.config.lr},
                {"params": [p for p in self.head_parameters() if p.requires_grad], "lr": self.config.head_lr}]


def log_prior(label_counts: dict[str, int], labels: tuple[str, ...]) -> torch.Tensor:
    """[C] log((count + 1) / (n + C)): the profile's label frequencies, Laplace-smoothed."""
    counts = torch.tensor([float(label_counts.get(label, 0)) for label in labels])
    return torch.log((counts + 1) / (counts.sum() + len(labels)))


# ---- artifacts -------------------------------------------------------------------------------

_MAGIC = b"PKA1"


@dataclass(frozen=True)
class Artifact:
    """A profile's stored artifact: the method's payload (e.g. hard-mask bits) and its extras
    (safetensors with per-profile LayerNorm/head tensors and a JSON header)."""

    method: str
    payload: bytes
    extras: bytes

    @property
    def payload_bytes(self) -> int:
        return len(self.payload)

    @property
    def stored_bytes(self) -> int:
        """Everything stored for this profile: payload plus extras."""
        return len(self.payload) + len(self.extras)

    def to_bytes(self) -> bytes:
        name = self.method.encode()
        return _MAGIC + struct.pack("<BI", len(name), len(self.payload)) + name + self.payload + self.extras

    @classmethod
    def from_bytes(cls, blob: bytes) -> Artifact:
        if blob[:4] != _MAGIC or len(blob) < 9:
            raise ArtifactError("not a profilekit artifact (bad magic bytes)")
        name_len, payload_len = struct.unpack("<BI", blob[4:9])
        start = 9 + name_len
        if len(blob) < start + payload_len:
            raise ArtifactError(f"artifact truncated: {len(blob)} bytes, header promises {start + payload_len}+")
        method = blob[9:start].decode()
        return cls(method, blob[start:start + payload_len], blob[start + payload_len:])


def write_extras(tensors: dict[str, torch.Tensor], header: dict) -> bytes:
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in tensors.items()}
    return st_save(tensors, metadata={"header": json.dumps(header, sort_keys=True)})


def read_extras(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        tensors = st_load(blob)
        n = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8:8 + n]).get("__metadata__", {})
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError(f"artifact extras are not valid safetensors: {exc}") from exc
    if "header" not in metadata:
        raise ArtifactError("artifact extras carry no header")
    return tensors, metadata


def read_header(artifact: Artifact, ctx: EngineContext) -> tuple[dict[str, torch.Tensor], dict]:
    """The extras' tensors and header of an artifact, refused if it is of another method or backbone."""
    tensors, metadata = read_extras(artifact.extras)
    header = json.loads(metadata["header"])
    check_header(header, artifact.method, ctx)
    return tensors, header


def base_header(method: str, state: ProfileState, ctx: EngineContext, **more) -> dict:
    return {"method": method, "backbone_id": ctx.backbone_id, "labels": list(state.labels),
            "shared_head": state.shared_head, "config": state.config.to_dict(), **more}


def check_header(header: dict, method: str, ctx: EngineContext) -> None:
    if header.get("method") != method:
        raise ArtifactError(f"artifact is for method {header.get('method')!r}, not {method!r}")
    if header.get("backbone_id") != ctx.backbone_id:
        raise ArtifactError(f"artifact was trained on backbone {header.get('backbone_id')!r}, "
                            f"this engine serves {ctx.backbone_id!r}")


def head_tensors(state: ProfileState) -> dict[str, torch.Tensor]:
    if state.shared_head:
        return {}
    return {"head_weight": state.head_weight, "head_bias": state.head_bias}


def restore_head(state: ProfileState, tensors: dict[str, torch.Tensor]) -> None:
    if state.shared_head:
        return
    if "head_weight" not in tensors:
        raise ArtifactError("artifact has a per-profile head but stores no head tensors")
    if tensors["head_weight"].shape[0] != len(state.labels):
        raise ArtifactError(f"head has {tensors['head_weight'].shape[0]} rows for {len(state.labels)} labels")
    state.head_weight = nn.Parameter(tensors["head_weight"])
    state.head_bias = nn.Parameter(tensors["head_bias"])


def count(params: list[torch.Tensor]) -> int:
    return sum(p.numel() for p in params)


def save_factors(state: ProfileState, ctx: EngineContext, names: tuple[str, ...]) -> Artifact:
    """An artifact whose payload is the method's named float32 tensors (safetensors) and whose
    extras hold the header and the head: the factors are what is stored, never a fused table."""
    factors = {name: getattr(state, name).detach().to("cpu", torch.float32).contiguous() for name in names}
    extras = write_extras(head_tensors(state), base_header(state.method, state, ctx))
    return Artifact(state.method, st_save(factors), extras)


def load_factors(artifact: Artifact, ctx: EngineContext, state_class: type, config_class: type,
                 names: tuple[str, ...]) -> ProfileState:
    """Inverse of save_factors: rebuild the state from its config and check every factor's shape."""
    tensors, header = read_header(artifact, ctx)
    state = state_class(config_class(**header["config"]), ctx, tuple(header["labels"]), torch.Generator())
    try:
        factors = st_load(artifact.payload)
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError(f"{artifact.method} payload is not valid safetensors: {exc}") from exc
    for name in names:
        expected = tuple(getattr(state, name).shape)
        if name not in factors or tuple(factors[name].shape) != expected:
            found = tuple(factors[name].shape) if name in factors else "missing"
            raise ArtifactError(f"{artifact.method} artifact tensor {name}: {found}, expected {expected}")
        setattr(state, name, nn.Parameter(factors[name]))
    restore_head(state, tensors)
    return state.to(ctx.device)
