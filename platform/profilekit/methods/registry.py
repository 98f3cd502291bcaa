"""Methods by name. Each method registers itself from its own folder's `__init__.py` with one
`register_method(...)` call (as peft's tuners do); the folder's layer.py holds its state class and
`compose()`, its artifact.py `save()` and `load()`. Names, configs and presets import no torch; the
math is imported when first used. Adding a method: CONTRIBUTING.md."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from functools import cached_property
from importlib import import_module

from profilekit.errors import ConfigError, UnknownMethodError
from profilekit.methods.config import MethodConfig

# the built-in method folders under profilekit/methods/, imported on first use
METHOD_FOLDERS = ("head_only", "single_adapter", "xpeft", "aot", "dept", "dpt", "prompt_tuning")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config_class: type[MethodConfig]
    package: str  # the method's folder, e.g. profilekit.methods.xpeft
    state: str  # name of its ProfileState subclass in layer.py: __init__(config, ctx, labels, generator)
    uses_pool: bool = False
    preset: dict = dataclasses.field(default_factory=dict)  # config fields fixed by this name
    tiny: dict = dataclasses.field(default_factory=dict)  # overrides that fit a tiny test backbone (d=32, L=2)

    def make_config(self, **overrides) -> MethodConfig:
        return self.config_class(**(self.preset | overrides))

    @cached_property
    def state_class(self) -> type:
        return getattr(import_module(f"{self.package}.layer"), self.state)

    @cached_property
    def compose(self):
        """(states, ctx, *, training, generators, rows) -> Effects | AdapterWeights | None"""
        return import_module(f"{self.package}.layer").compose

    @cached_property
    def save(self):
        """(state, ctx) -> Artifact"""
        return import_module(f"{self.package}.artifact").save

    @cached_property
    def load(self):
        """(artifact, ctx) -> state"""
        return import_module(f"{self.package}.artifact").load


_METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, config_class: type[MethodConfig], *, state: str, uses_pool: bool = False,
                    preset: dict | None = None, tiny: dict | None = None) -> None:
    """Called from a method folder's __init__.py; the folder is the config class's package."""
    package = config_class.__module__.rsplit(".", 1)[0]
    _METHODS[name] = MethodSpec(name, config_class, package, state, uses_pool, preset or {}, tiny or {})


def _builtin() -> dict[str, MethodSpec]:
    for folder in METHOD_FOLDERS:  # each registers itself on its first import
        import_module(f"profilekit.methods.{folder}")
    return _METHODS


def get_method(name: str) -> MethodSpec:
    methods = _builtin()
    if name not in methods:
        raise UnknownMethodError(f"unknown method {name!r}; known: {', '.join(sorted(methods))}")
    return methods[name]


def method_names() -> list[str]:
    return sorted(_builtin())


def parse_value(config_class: type, field: str, value: str):
    """A command-line string as the type of `field` in `config_class` (int, float, bool or text); a field
    that may be unset (`int | None`, …) takes "auto" for unset."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if field not in fields:
        raise ConfigError(f"{config_class.__name__} has no field {field!r}; fields: {', '.join(fields)}")
    kind = typing.get_type_hints(config_class).get(field, str)
    if type(None) in typing.get_args(kind):  # X | None
        if value.lower() == "auto":
            return None
        [kind] = [k for k in typing.get_args(kind) if k is not type(None)]
    if kind is bool:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{field} takes true or false, got {value!r}")
        return value.lower() in ("true", "1")
    try:
        return kind(value) if kind in (int, float) else value
    except ValueError as exc:
        raise ConfigError(f"{field} takes a{'n int' if kind is int else ' float'}, got {value!r}") from exc


def parse_overrides(settings: list[str], config_of=lambda name: get_method(name).config_class) -> dict[str, dict]:
    """["xpeft_hard.k=20", …] → {"xpeft_hard": {"k": 20}}: each value parsed as its config field's type.
    `config_of` maps the name before the dot to a config class (default: a registered method's)."""
    out: dict[str, dict] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        name, dot, field = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {setting!r}: expected method.field=value")
        out.setdefault(name, {})[field] = parse_value(config_of(name), field, value)
    return out
