"""The README's "What a profile stores" table holds: every figure is what the engine stores on the
packaged MiniLM with N=100 adapters (a profile's bytes do not depend on training, only on its method,
config, pool and label count)."""

import re

import pytest

from profilekit.engine import Engine
from profilekit.methods.xpeft.artifact import hard_mask_bytes
from profilekit.pool import PoolSpec, random_pool
from tests.conftest import REPO

pytestmark = pytest.mark.integration

RANDOM = {"`xpeft_hard`, random pool (the default there: `head=auto` keeps an own head)": [("xpeft_hard", {})],
          "`head_only`": [("head_only", {})],
          "`xpeft_soft`, random pool": [("xpeft_soft", {})],
          "`dpt` / `prompt_tuning` / `dept`": [("dpt", {}), ("prompt_tuning", {}), ("dept", {})],
          "`single_adapter` / `aot_fc` / `aot_kron`": [("single_adapter", {}), ("aot_fc", {}), ("aot_kron", {})]}
WARM = {"`xpeft_hard`, warm pool (the default there: `head=auto`)": [("xpeft_hard", {})],
        "the same with `stored_dtype=float16`": [("xpeft_hard", {"stored_dtype": "float16"})],
        "`xpeft_hard`, warm pool, `head=shared` (label prior on)": [("xpeft_hard", {"head": "shared"})],
        "`xpeft_hard`, warm pool, `head=shared`, `layer_norm=false`": [
            ("xpeft_hard", {"head": "shared", "layer_norm": False})],
        "the same with `prior=false`": [("xpeft_hard", {"head": "shared", "layer_norm": False, "prior": False})],
        "`xpeft_hard`, warm pool, `head=profile`": [("xpeft_hard", {"head": "profile"})]}


def readme_table() -> dict[str, tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## What a profile stores"):]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): (cells[2].strip(), cells[3].strip()) for cells in rows[1:]}


def shown(sizes: list[int]) -> str:
    return " / ".join(f"{n:,}" for n in sizes)


def test_the_readme_states_what_each_method_stores(fresh_minilm):
    from bench.scale_store import warm_like_pool

    labels = {count: [f"L{i}" for i in range(count)] for count in (2, 10)}
    engine = Engine(fresh_minilm, random_pool(PoolSpec(fresh_minilm.backbone_id, 100, 6, 384)))
    measured = {}
    for rows, pool in ((RANDOM, None), (WARM, warm_like_pool(fresh_minilm, num_adapters=100, labels=tuple(
            labels[10]), seed=0))):
        if pool is not None:
            engine.use_pool(pool)
        for name, variants in rows.items():
            measured[name] = tuple(shown([engine.save(engine.new_state(method, labels[count], **config)).stored_bytes
                                          for method, config in variants]) for count in (2, 10))
    assert readme_table() == measured
    assert hard_mask_bytes(100, 6) == 156 and "156 B of bits" in (REPO / "README.md").read_text()
    pool_mib = engine.pool.nbytes() / 2**20
    assert re.search(rf"The pool itself \({pool_mib:.0f} MiB resident", (REPO / "README.md").read_text())
