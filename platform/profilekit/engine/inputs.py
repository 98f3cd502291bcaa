"""Where soft prompts sit in the encoder: right after [CLS], for every prompt method, in training
and serving alike (METHODS.md §4).

A row whose profile has a prompt of m vectors is laid out as

    [CLS] p_1 … p_m t_1 … t_k [SEP] [pad …]

i.e. the tokenizer's row (right-padded, [CLS] first) with the prompt inserted at position 1. Position
embeddings count through the prompt, so the text moves m positions right; [CLS] keeps position 0.
Rows without a prompt keep their layout (their text starts right after [CLS] as before). DePT's
word-embedding update is added to the text's own tokens (text position j, [CLS] = 0) before the
prompt is inserted. The engine reads the last hidden states back at the text positions only, so the
pooled representation (the mean over a row's text tokens, [CLS] and [SEP] included) excludes
prompt positions and means the same for every method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from profilekit.errors import BatchError


@dataclass
class PromptLayout:
    embeds: torch.Tensor  # [B, S', d] input word embeddings with each row's prompt in place
    attention_mask: torch.Tensor  # [B, S']
    rows: torch.Tensor  # [N] batch row of each text token (N real tokens in the batch)
    cols: torch.Tensor  # [N] its column in the tokenizer's input [B, S]
    target: torch.Tensor  # [N] its column in the layout [B, S']
    text_shape: tuple[int, int]  # (B, S)

    def text_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, S', d] → [B, S, d]: the text tokens' hidden states in the input's columns (0 at padding)."""
        out = hidden.new_zeros(*self.text_shape, hidden.shape[-1])
        return out.index_put((self.rows, self.cols), hidden[self.rows, self.target])


def check_right_padded(attention_mask: torch.Tensor) -> None:
    """Prompts go after [CLS] at column 0, so every row must start with a token and pad on the right."""
    right_padded = bool((attention_mask.cummin(dim=1).values == attention_mask).all())
    if not right_padded or not bool(attention_mask[:, 0].all()):
        raise BatchError("rows with prompts need right-padded inputs that start with [CLS] "
                         "(attention_mask of the form 1…1 0…0); tokenize with Backbone.tokenize")


def build_layout(word: torch.Tensor, attention_mask: torch.Tensor,
                 prompts: list[tuple[torch.Tensor, torch.Tensor]], max_positions: int) -> PromptLayout:
    """word [B, S, d]: the text's input word embeddings; prompts: (rows [R], vectors [R, m, d]) per group."""
    check_right_padded(attention_mask)
    B, S, d = word.shape
    lengths = torch.zeros(B, dtype=torch.long, device=word.device)  # [B] prompt length of each row
    for rows, vectors in prompts:
        lengths[rows] = vectors.shape[1]
    total = attention_mask.sum(1) + lengths  # [B] tokens of each row in the layout
    width = int(total.max())
    if width > max_positions:
        row = int(total.argmax())
        raise BatchError(f"row {row}: {int(attention_mask[row].sum())} text tokens and a prompt of "
                         f"{int(lengths[row])} exceed the backbone's {max_positions} positions")
    rows, cols = attention_mask.nonzero(as_tuple=True)  # [N] each real token
    target = cols + lengths[rows] * (cols > 0)  # [CLS] stays at 0, the rest moves past the prompt
    embeds = word.new_zeros(B, width, d).index_put((rows, target), word[rows, cols])
    mask = attention_mask.new_zeros(B, width).index_put((rows, target), attention_mask.new_ones(()))
    for group_rows, vectors in prompts:
        at = torch.arange(1, 1 + vectors.shape[1], device=word.device).unsqueeze(0)  # [1, m]
        embeds = embeds.index_put((group_rows.unsqueeze(1), at), vectors.to(word.dtype))
        mask = mask.index_put((group_rows.unsqueeze(1), at), attention_mask.new_ones(()))
    return PromptLayout(embeds, mask, rows, cols, target, (B, S))


def split_by_length(lengths: list[int], overhead: int | None) -> list[list[int]]:
    """Rows (indexes into `lengths`, tokens per row) cut into sub-batches of similar length, one forward
    each, each padded only to its own longest row. A forward is priced at rows × longest row plus
    `overhead` positions (its fixed cost); the cut with the least total price is taken (exact: dynamic
    programming over the distinct lengths, shortest first). None: one sub-batch of every row."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if overhead is None or len(order) < 2:
        return [order]
    ends = [i + 1 for i in range(len(order)) if i + 1 == len(order) or lengths[order[i]] != lengths[order[i + 1]]]
    best = [0.0] + [float("inf")] * len(ends)  # best[j]: price of the rows before ends[j - 1]
    cut = [0] * (len(ends) + 1)
    for j, end in enumerate(ends, 1):
        width = lengths[order[end - 1]]
        for i in range(j):
            start = ends[i - 1] if i else 0
            price = best[i] + (end - start) * width + overhead
            if price < best[j]:
                best[j], cut[j] = price, i
    bounds, j = [], len(ends)
    while j:
        bounds.append((ends[cut[j] - 1] if cut[j] else 0, ends[j - 1]))
        j = cut[j]
    return [order[start:end] for start, end in reversed(bounds)]
