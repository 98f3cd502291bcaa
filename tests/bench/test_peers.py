"""`profilekit bench`'s peer comparison on a tiny BERT: every figure is printed, and every contender's
mixed batch gives each row what that profile's adapter alone gives it (so the comparison is like with
like). Timings are never asserted."""

import argparse

import pytest
import torch

from bench import contenders, peers

TINY_FLAGS = ["--peers-rows", "8", "--peers-sweep", "1,4", "--peers-repeats", "1", "--peers-pool-size", "12",
              "--peers-k", "3", "--peers-lora-rank", "2", "--peers-loads", "3", "--peers-register-seconds", "2",
              "--peers-register-max", "20", "--peers-register-chunk", "5"]


def tiny_args(*extra):
    parser = argparse.ArgumentParser()
    peers.add_arguments(parser)
    return parser.parse_args(TINY_FLAGS + list(extra))


def test_profilekit_bench_takes_both_parts_flags_and_refuses_an_unknown_part(capsys):
    """`profilekit bench` is bench/run.py: its help lists the peers' and the scale run's flags, and a
    part it does not have is refused before anything runs."""
    from profilekit.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["bench", "--help"])
    shown = capsys.readouterr().out
    assert ended.value.code == 0 and "--peers-sweep" in shown and "--scale-database-url" in shown
    with pytest.raises(SystemExit) as ended:
        main(["bench", "--parts", "peers,nonsense"])
    assert ended.value.code == 2 and "unknown ['nonsense']" in capsys.readouterr().err


def test_run_prints_and_returns_every_figure(tiny_backbone):
    printed = {}
    figures = peers.run(tiny_args(), lambda name, value: printed.setdefault(name, value), backbone=tiny_backbone)
    expected = ["rows", "mean_text_tokens", "peft_load_adapter_ms_p50", "peft_load_adapter_ms_p99",
                "profilekit_load_ms_p50", "profilekit_load_ms_p99", "max_profiles_peft",
                "peft_register_ms_first_chunk", "peft_register_ms_last_chunk", "peft_register_rss_mb",
                "peft_lora_kb_per_profile"]
    for p in (1, 4):
        expected += [f"{case}_rows_per_second_{p}" for case in ("plain", "profilekit", *peers.PEERS)]
        expected += [f"mixed_vs_{peer}_ratio_{p}" for peer in peers.PEERS]
        expected += [f"{case}_vs_backbone_ratio_{p}" for case in ("profilekit", *peers.PEERS)]
    for name in expected:
        assert name in figures and name in printed, name
        assert figures[name] > 0, name
    assert 2 <= figures["max_profiles_peft"] <= 20
    assert figures["peft_load_adapter_ms_p99"] >= figures["peft_load_adapter_ms_p50"]


@pytest.fixture
def cases_and_tokens(tiny_backbone):
    from tests.conftest import TEXTS

    cases = peers.build(tiny_backbone, tiny_args(), profiles=4)
    return cases, tiny_backbone.tokenize(TEXTS)


@pytest.mark.parametrize("name", ["profilekit", "peft", "adapters_batchsplit"])
def test_mixed_rows_equal_each_profile_alone(cases_and_tokens, name):
    cases, tokens = cases_and_tokens
    batch = contenders.make_batch(tokens, 4)
    with torch.no_grad():
        mixed = cases[name].forward(batch)  # [B, C]
        plain = cases["plain"].forward(batch)
        for profile, first, count in batch.runs():
            rows = slice(first, first + count)
            alone = cases[name].single(batch.input_ids[rows], batch.attention_mask[rows], profile)
            assert torch.allclose(mixed[rows], alone, atol=1e-5), (name, profile)
    assert mixed.shape == plain.shape
    assert not torch.allclose(mixed, plain, atol=1e-3), f"{name}'s adapters must change the logits"


def test_adapters_batchsplit_equals_switching(cases_and_tokens):
    cases, tokens = cases_and_tokens
    batch = contenders.make_batch(tokens, 4)
    with torch.no_grad():
        split = cases["adapters_batchsplit"].forward(batch)
        switched = cases["adapters_switching"].forward(batch)
    assert torch.allclose(split, switched, atol=1e-5)


def test_profiles_differ_through_their_adapters(cases_and_tokens):
    """With one head for all profiles, two profiles still score the same rows differently: the adapters
    (masks, LoRAs, SeqBns) differ, not only the heads."""
    cases, tokens = cases_and_tokens
    heads = cases["peft"].heads  # shared by every contender but profilekit, whose states hold theirs
    heads.weight[:] = heads.weight[0].clone()
    heads.bias[:] = heads.bias[0].clone()
    states = cases["profilekit"].states
    with torch.no_grad():
        for state in states[1:]:
            state.head_weight.copy_(states[0].head_weight)
            state.head_bias.copy_(states[0].head_bias)
        for name in ("profilekit", "peft", "adapters_batchsplit"):
            first, second = (cases[name].single(tokens["input_ids"], tokens["attention_mask"], p) for p in (0, 1))
            assert not torch.allclose(first, second, atol=1e-4), name
