"""`profilekit serve` with pinned profiles it cannot honour refuses to start as every other bad setting
does: one line naming the setting and exit status 2, not uvicorn's startup traceback and its exit 3."""

from __future__ import annotations

import pytest


def serve_refused(monkeypatch, capsys, **env) -> str:
    """`profilekit serve` under these PROFILEKIT_* settings: it must exit 2; returns what it printed."""
    from profilekit.cli import main
    from profilekit.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(f"PROFILEKIT_{name.upper()}", value)
    get_settings.cache_clear()
    try:
        assert main(["serve", "--no-worker", "--port", "0"]) == 2
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().err


@pytest.mark.parametrize("pins", ["nobody", "nobody,nor-this-one"])
def test_serve_refuses_pins_it_cannot_honour_with_one_line(tiny_backbone_dir, tmp_path, monkeypatch, capsys, pins):
    for name in ("PROFILEKIT_DATABASE_URL", "PROFILEKIT_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    err = serve_refused(monkeypatch, capsys, data_dir=str(tmp_path), backbone_path=str(tiny_backbone_dir),
                        default_pool_size="12", pinned_profiles=pins)
    assert "profilekit: error: PROFILEKIT_PINNED_PROFILES names an unknown profile" in err and "nobody" in err
    assert "Traceback" not in err


def test_a_bad_environment_setting_is_one_line_naming_the_variable_and_its_value(monkeypatch, capsys):
    err = serve_refused(monkeypatch, capsys, max_batch_size="sixty-four", pool_store="/var/pools")
    assert "PROFILEKIT_MAX_BATCH_SIZE='sixty-four'" in err and "valid integer" in err
    assert "PROFILEKIT_POOL_STORE='/var/pools'" in err and "Traceback" not in err
