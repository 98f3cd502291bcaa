"""Composed AoT bias rows kept for a hot profile, so that serving it again costs a gather, not a
recomposition from its factors.

A served profile's rows P_i[x] depend only on its factors and the token id x, so once computed they
can be reused by every later forward. The artifact cache (serving/cache.py) hands each state it keeps
a `charge` callback: the rows are kept only while the cache grants their bytes within its budget, and
they go when the state is evicted. Training never reads them (dropout makes each draw different).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class HotRows:
    """One profile's rows for the token ids it has served: ids [n] ascending, rows [L, n, d]."""

    def __init__(self, charge: Callable[[int], bool]):
        self.charge = charge  # asks the cache for more bytes; False: keep nothing more
        self.ids: torch.Tensor | None = None  # [n]
        self.rows: torch.Tensor | None = None  # [L, n, d]

    @property
    def nbytes(self) -> int:
        if self.ids is None:
            return 0
        return self.ids.numel() * self.ids.element_size() + self.rows.numel() * self.rows.element_size()

    def lookup(self, ids: torch.Tensor) -> torch.Tensor | None:
        """[L, T, d] rows of the ascending ids [T], or None unless every one is kept."""
        if self.ids is None:
            return None
        at = torch.searchsorted(self.ids, ids).clamp(max=self.ids.numel() - 1)  # [T]
        if not bool((self.ids[at] == ids).all()):
            return None
        return self.rows.index_select(1, at)

    def keep(self, ids: torch.Tensor, rows: torch.Tensor) -> None:
        """Add the rows [L, T, d] of the ascending ids [T] that are not kept yet, if the cache grants
        their bytes."""
        if self.ids is not None:
            new = ~torch.isin(ids, self.ids)
            ids, rows = ids[new], rows[:, new]
        if ids.numel() == 0 or not self.charge(ids.numel() * ids.element_size() + rows.numel() * rows.element_size()):
            return
        if self.ids is None:
            self.ids, self.rows = ids.clone(), rows.clone()  # their own memory, not a view of a batch's rows
            return
        merged = torch.cat([self.ids, ids])
        order = merged.argsort()
        self.ids, self.rows = merged[order], torch.cat([self.rows, rows], 1).index_select(1, order)
