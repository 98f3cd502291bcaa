"""Predictions: profiles resolved through the serving floor's one batched loader, all or nothing."""

from __future__ import annotations

from profilekit.api.auth import Caller


def resolve(runtime, caller: Caller, profile_ids: list[str]) -> dict[str, tuple[object, str]]:
    """profile id → (servable state, artifact version); unknown or another tenant's ids raise NotFound
    (listing them), untrained ones NotTrained (naming their states)."""
    return runtime.serving.states(profile_ids, tenant=None if caller.is_admin else caller.tenant)
