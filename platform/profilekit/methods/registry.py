"""Methods by name. Adding one is one `register_method(...)` call (see CONTRIBUTING.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from profilekit.errors import UnknownMethodError
from profilekit.methods.base import MethodConfig


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config_class: type[MethodConfig]
    state_class: type  # ProfileState subclass: __init__(config, ctx, labels, generator)
    compose: Callable  # (states, ctx, *, training, generators, rows) -> Effects | AdapterWeights | None
    save: Callable  # (state, ctx) -> Artifact
    load: Callable  # (artifact, ctx) -> state
    uses_pool: bool = False
    preset: dict = dataclasses.field(default_factory=dict)  # config fields fixed by this name

    def make_config(self, **overrides) -> MethodConfig:
        return self.config_class(**(self.preset | overrides))


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    _METHODS[spec.name] = spec


def get_method(name: str) -> MethodSpec:
    if name not in _METHODS:
        raise UnknownMethodError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def method_names() -> list[str]:
    return sorted(_METHODS)


def _register_builtin() -> None:
    from profilekit.methods.aot import artifact as aot_artifact
    from profilekit.methods.aot import layer as aot_layer
    from profilekit.methods.aot.config import AoTFCConfig, AoTKronConfig
    from profilekit.methods.dept import artifact as dept_artifact
    from profilekit.methods.dept import layer as dept_layer
    from profilekit.methods.dept.config import DePTConfig
    from profilekit.methods.dpt import artifact as dpt_artifact
    from profilekit.methods.dpt import layer as dpt_layer
    from profilekit.methods.dpt.config import DPTConfig
    from profilekit.methods.head_only import artifact as ho_artifact
    from profilekit.methods.head_only import layer as ho_layer
    from profilekit.methods.head_only.config import HeadOnlyConfig
    from profilekit.methods.prompt_tuning import artifact as pt_artifact
    from profilekit.methods.prompt_tuning import layer as pt_layer
    from profilekit.methods.prompt_tuning.config import PromptTuningConfig
    from profilekit.methods.single_adapter import artifact as sa_artifact
    from profilekit.methods.single_adapter import layer as sa_layer
    from profilekit.methods.single_adapter.config import SingleAdapterConfig
    from profilekit.methods.xpeft import artifact as xp_artifact
    from profilekit.methods.xpeft import layer as xp_layer
    from profilekit.methods.xpeft.config import XPeftConfig

    register_method(MethodSpec("head_only", HeadOnlyConfig, ho_layer.HeadOnlyState, ho_layer.compose,
                               ho_artifact.save, ho_artifact.load))
    register_method(MethodSpec("single_adapter", SingleAdapterConfig, sa_layer.SingleAdapterState,
                               sa_layer.compose, sa_artifact.save, sa_artifact.load))
    for mask in ("hard", "soft"):
        register_method(MethodSpec(f"xpeft_{mask}", XPeftConfig, xp_layer.XPeftState, xp_layer.compose,
                                   xp_artifact.save, xp_artifact.load, uses_pool=True, preset={"mask": mask}))
    register_method(MethodSpec("aot_fc", AoTFCConfig, aot_layer.AoTFCState, aot_layer.compose,
                               aot_artifact.save, aot_artifact.load))
    register_method(MethodSpec("aot_kron", AoTKronConfig, aot_layer.AoTKronState, aot_layer.compose,
                               aot_artifact.save, aot_artifact.load))
    register_method(MethodSpec("dept", DePTConfig, dept_layer.DePTState, dept_layer.compose,
                               dept_artifact.save, dept_artifact.load))
    register_method(MethodSpec("dpt", DPTConfig, dpt_layer.DPTState, dpt_layer.compose,
                               dpt_artifact.save, dpt_artifact.load))
    register_method(MethodSpec("prompt_tuning", PromptTuningConfig, pt_layer.PromptTuningState,
                               pt_layer.compose, pt_artifact.save, pt_artifact.load))


_register_builtin()
