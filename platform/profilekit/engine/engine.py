"""The mixed batch: rows of many profiles (and methods) in one forward through the frozen backbone.

Composition happens once per group of distinct profiles in the batch (grouped by method and config),
never per row or per pool adapter. Each group hands back its effects (methods/effects.py) and every
row sees only its own profile's: a soft prompt after [CLS] (engine/inputs.py), an update of its
word embeddings, token biases before every layer, an adapter after every layer's FFN. A batch without
prompts or embedding updates runs the plain input_ids path; without biases no pre-hook is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from profilekit.backbone import Backbone
from profilekit.engine.hooks import AdapterGroup, AdapterOutput, install_token_biases
from profilekit.engine.inputs import build_layout, split_by_length
from profilekit.errors import ArtifactError
from profilekit.methods.base import Artifact, EngineContext, ProfileState
from profilekit.methods.effects import Effects, GroupRows, as_effects
from profilekit.methods.registry import get_method


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, S, d] hidden states → [B, d] float32 mean over each row's tokens (attention_mask 1): the one
    pooled representation of every method, the warm pool and the peer benchmarks."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, S, 1]
    return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float()


def pristine_encoder(backbone: Backbone) -> torch.nn.Module:
    """A copy of the backbone's encoder without any Engine wrappers (for peers that wrap it their way)."""
    import copy

    model = copy.deepcopy(backbone.model)
    for layer in model.encoder.layer:
        if isinstance(layer.output, AdapterOutput):
            layer.output = layer.output.inner
    return model


@dataclass
class BatchOutput:
    pooled: torch.Tensor  # [B, d] mean over each row's text tokens (prompt positions excluded)
    logits: torch.Tensor  # [B, C_max]; padding and rows without a head hold the dtype's minimum
    labels: list[tuple[str, ...] | None]  # per row: the labels its logits score, None for plain rows
    hidden: torch.Tensor | None = None  # [B, S, d] last hidden states of the text tokens (input_ids' columns)


@dataclass
class ComposedGroup:
    rows: torch.Tensor  # [R] batch rows of this group (ascending)
    slot: torch.Tensor  # [R] each row's profile within the group
    effects: Effects


@dataclass
class Prediction:
    label: str | None
    scores: dict[str, float]


SPLIT_OVERHEAD = 128  # positions; chosen on CPU (docs/benchmarks.md, #15 "Rows of similar length")


class Engine:
    """One frozen backbone, one pool, any number of profiles served in mixed batches."""

    def __init__(self, backbone: Backbone, pool=None, *, split_overhead: int | None = SPLIT_OVERHEAD):
        """`split_overhead`: what one forward costs beyond its positions, in positions, for serving's
        split of a batch by text length (`forward_grouped`); None: never split by length."""
        self.backbone = backbone
        self.split_overhead = split_overhead
        self.ctx = EngineContext(backbone.backbone_id, backbone.num_layers, backbone.hidden_size,
                                 backbone.vocab_size, device=backbone.device, dtype=backbone.dtype,
                                 embeddings=backbone.model.get_input_embeddings().weight)
        config = backbone.model.config  # RoBERTa-style position ids start after the padding index
        offset = config.pad_token_id + 1 if config.model_type in ("roberta", "xlm-roberta") else 0
        self.max_positions = config.max_position_embeddings - offset  # tokens a row may hold, prompt included
        self.pool = None
        if pool is not None:
            self.use_pool(pool)
        self.active: list[AdapterGroup] = []  # set for the duration of one forward
        for index, layer in enumerate(backbone.layers()):
            if isinstance(layer.output, AdapterOutput):
                raise ValueError("this backbone is already wrapped by another Engine")
            layer.output = AdapterOutput(layer.output, index, self)

    @classmethod
    def of(cls, backbone: Backbone) -> Engine:
        """The engine already wrapping `backbone`, or a new one (a backbone is wrapped once)."""
        output = backbone.layers()[0].output
        return output._source[0] if isinstance(output, AdapterOutput) else cls(backbone)

    def add_pool(self, pool):
        """Serve `pool` too (profiles of several pools can share a batch); returns it on the device."""
        if pool.spec.backbone_id != self.backbone.backbone_id:
            raise ValueError(f"pool was built for backbone {pool.spec.backbone_id!r}, "
                             f"not {self.backbone.backbone_id!r}")
        if pool.pool_hash not in self.ctx.pools:
            self.ctx.pools[pool.pool_hash] = pool.to(self.backbone.device, self.backbone.dtype)
        return self.ctx.pools[pool.pool_hash]

    def use_pool(self, pool) -> None:
        """Make `pool` the default for new profiles (and serve it); None: no default pool."""
        self.pool = self.add_pool(pool) if pool is not None else None
        self.ctx.pool = self.pool

    # ---- profiles ------------------------------------------------------------------------------
    def new_state(self, method: str, labels, *, seed: int = 0, **overrides) -> ProfileState:
        """A fresh, untrained profile state of `method` scoring `labels`."""
        spec = get_method(method)
        if spec.uses_pool and self.pool is None:
            raise ValueError(f"method {method} needs a pool; this engine has none")
        config = spec.make_config(**overrides)
        generator = torch.Generator().manual_seed(seed)
        return spec.state_class(config, self.ctx, tuple(labels), generator).to(self.ctx.device)

    def save(self, state: ProfileState) -> Artifact:
        return get_method(state.method).save(state, self.ctx)

    def load(self, artifact: Artifact | bytes) -> ProfileState:
        if isinstance(artifact, (bytes, bytearray, memoryview)):
            artifact = Artifact.from_bytes(bytes(artifact))
        spec = get_method(artifact.method)
        if spec.uses_pool and not self.ctx.pools:
            raise ArtifactError(f"a {artifact.method} artifact needs a pool; this engine serves none")
        state = spec.load(artifact, self.ctx)
        state.requires_grad_(False)
        return state

    # ---- forward -------------------------------------------------------------------------------
    def _compose(self, distinct: list[ProfileState], row_profile: list[int], training: bool, generators,
                 input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[ComposedGroup]:
        """Compose once per group of distinct profiles sharing method, config and pool."""
        device = input_ids.device
        groups: dict[tuple, list[int]] = {}
        for i, state in enumerate(distinct):
            groups.setdefault((state.method, state.config, getattr(state, "pool_hash", None)), []).append(i)
        composed = []
        for (method, _, _), members in groups.items():
            states = [distinct[i] for i in members]
            gens = [generators[i] for i in members] if generators is not None else None
            slot_of = {profile: slot for slot, profile in enumerate(members)}
            rows = [r for r, p in enumerate(row_profile) if p in slot_of]
            rows_t = torch.tensor(rows, device=device)
            slot = torch.tensor([slot_of[row_profile[r]] for r in rows], device=device)
            effects = as_effects(get_method(method).compose(
                states, self.ctx, training=training, generators=gens,
                rows=GroupRows(input_ids[rows_t], attention_mask[rows_t], slot)))
            if effects is None:
                continue
            if effects.token_bias is not None and effects.changes_inputs:
                raise ValueError(f"method {method}: token biases index the input's columns and cannot be "
                                 "combined with a prompt in one method")
            composed.append(ComposedGroup(rows_t, slot, effects))
        return composed

    @staticmethod
    def _lined_up(group: ComposedGroup, batch: int) -> bool:
        """Every batch row is in the group and row i uses profile i: adapters need no per-row gather."""
        return group.rows.numel() == batch and bool((group.slot == torch.arange(batch, device=group.slot.device)).all())

    def _run(self, input_ids, attention_mask, groups: list[ComposedGroup]) -> torch.Tensor:
        """The backbone's last hidden states [B, S, d] at the input's columns, with every group's effects."""
        model = self.backbone.model
        changing = [g for g in groups if g.effects.changes_inputs]
        if not changing:  # the plain path: nothing to insert or add to the inputs
            return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        word = model.get_input_embeddings()(input_ids)  # [B, S, d]
        prompts = []
        for g in changing:
            if g.effects.embedding_delta is not None:  # DePT: W' = W + A·B at the text's positions
                delta = g.effects.embedding_delta[g.slot].to(word.dtype)  # [R, S, d]
                word = word.index_add(0, g.rows, delta * attention_mask[g.rows].unsqueeze(-1).to(word.dtype))
            if g.effects.prompt is not None:
                prompts.append((g.rows, g.effects.prompt[g.slot]))  # [R, m, d]
        layout = build_layout(word, attention_mask, prompts, self.max_positions)
        hidden = model(inputs_embeds=layout.embeds, attention_mask=layout.attention_mask).last_hidden_state
        return layout.text_hidden(hidden)

    def _heads(self, distinct: list[ProfileState], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked heads [P, C_max, d] and biases [P, C_max]; padded classes get the minimum bias."""
        weights, biases = zip(*(state.scoring_head(self.ctx) for state in distinct), strict=True)
        c_max = max(w.shape[0] for w in weights)
        low = torch.finfo(torch.float32).min
        head_w = torch.stack([torch.nn.functional.pad(w.float(), (0, 0, 0, c_max - w.shape[0])) for w in weights])
        head_b = torch.stack([torch.nn.functional.pad(b.float(), (0, c_max - b.shape[0]), value=low) for b in biases])
        return head_w.to(device), head_b.to(device)

    def score(self, pooled: torch.Tensor, states: list[ProfileState | None]) -> torch.Tensor:
        """[B, d] pooled rows → [B, C_max] logits, row i by the head of states[i] (None: the dtype's
        minimum everywhere). Heads do not depend on the backbone, so pooled rows may come from a cache."""
        distinct = list({id(s): s for s in states if s is not None}.values())
        low = torch.finfo(torch.float32).min
        if not distinct:
            return torch.full((len(states), 1), low, device=pooled.device)
        index_of = {id(s): i for i, s in enumerate(distinct)}
        head_w, head_b = self._heads(distinct, pooled.device)
        profile = torch.tensor([index_of[id(s)] if s is not None else 0 for s in states], device=pooled.device)
        logits = torch.einsum("bd,bcd->bc", pooled, head_w[profile]) + head_b[profile]  # [B, C_max]
        plain = torch.tensor([s is None for s in states], device=pooled.device)
        return logits.masked_fill(plain.unsqueeze(1), low)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                states: list[ProfileState | None], *, training: bool = False,
                generators: list[torch.Generator] | None = None) -> BatchOutput:
        """Run B rows, row i with profile states[i] (None: plain backbone). `generators` (one per
        distinct profile, in order of first appearance) draw training noise: Gumbel samples, AoT dropout."""
        distinct: list[ProfileState] = []
        index_of: dict[int, int] = {}
        for state in states:
            if state is not None and id(state) not in index_of:
                index_of[id(state)] = len(distinct)
                distinct.append(state)
        row_profile = [index_of[id(s)] if s is not None else -1 for s in states]
        groups = self._compose(distinct, row_profile, training, generators, input_ids, attention_mask)
        self.active = [AdapterGroup(g.rows, None if self._lined_up(g, len(states)) else g.slot, g.effects.adapters)
                       for g in groups if g.effects.adapters is not None]
        biases = [(g.rows, g.effects.token_bias) for g in groups if g.effects.token_bias is not None]
        handles = install_token_biases(self.backbone.layers(), biases) if biases else []
        try:
            hidden = self._run(input_ids, attention_mask, groups)
        finally:
            self.active = []
            for handle in handles:
                handle.remove()
        pooled = mean_pool(hidden, attention_mask)  # [B, d]
        labels = [s.labels if s is not None else None for s in states]
        return BatchOutput(pooled, self.score(pooled, states), labels, hidden)

    def forward_grouped(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        states: list[ProfileState | None]) -> list[tuple[torch.Tensor, BatchOutput]]:
        """Serving's forward: rows grouped by the prompt length their profile inserts (0 for most methods),
        each group cut into sub-batches of similar text length (`split_by_length`, priced with
        `self.split_overhead`), one forward per sub-batch, each cut to its longest row, so no row is padded
        by another's prompt or by a much longer text. Every sub-batch runs in this call (none waits for a
        later batch); (rows [R], output) per sub-batch, output row i being input row rows[i]. Answers
        equal `forward` on the whole batch to float tolerance (padding is masked)."""
        lengths = attention_mask.sum(1).tolist()  # [B] tokens per row
        by_prompt: dict[int, list[int]] = {}
        for row, state in enumerate(states):
            by_prompt.setdefault(state.prompt_tokens if state is not None else 0, []).append(row)
        parts = [[rows[i] for i in part] for prompt, rows in by_prompt.items()
                 for part in split_by_length([lengths[r] + prompt for r in rows], self.split_overhead)]
        if len(parts) == 1:
            return [(torch.arange(len(states)), self.forward(input_ids, attention_mask, states))]
        outputs = []
        for rows in parts:
            index = torch.tensor(rows, device=input_ids.device)
            width = max(lengths[r] for r in rows)  # right-padded: the sub-batch's longest row
            out = self.forward(input_ids[index, :width], attention_mask[index, :width], [states[r] for r in rows])
            outputs.append((index, out))
        return outputs

    @torch.inference_mode()
    def predict(self, texts: list[str], states: list[ProfileState | None], *,
                grouped: bool = True) -> list[Prediction]:
        """Label and class probabilities per row, in the rows' order; rows without a profile get label
        None. `grouped`: through `forward_grouped` (what serving runs); else one forward for all rows."""
        tokens = self.backbone.tokenize(texts)
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if grouped:
            outputs = self.forward_grouped(ids, mask, states)
        else:
            outputs = [(torch.arange(len(texts)), self.forward(ids, mask, states))]
        predictions: list[Prediction | None] = [None] * len(texts)
        for rows, out in outputs:
            logits = out.logits.cpu()  # [R, C_max] read once per forward, not one device copy per row
            for i, row in enumerate(rows.tolist()):
                predictions[row] = _prediction(logits[i], out.labels[i])
        return predictions


def _prediction(logits: torch.Tensor, labels: tuple[str, ...] | None) -> Prediction:
    """One row's label and class probabilities from its logits [C_max]; no labels: a plain row."""
    if labels is None:
        return Prediction(None, {})
    probs = torch.softmax(logits[: len(labels)], dim=-1).tolist()
    best = max(range(len(labels)), key=probs.__getitem__)
    return Prediction(labels[best], dict(zip(labels, probs, strict=True)))
