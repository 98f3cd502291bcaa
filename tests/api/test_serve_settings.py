"""`profilekit serve` with pinned profiles it cannot honour refuses to start as every other bad setting
does: one line naming the setting and exit status 2, not uvicorn's startup traceback and its exit 3."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("pins", ["nobody", "nobody,nor-this-one"])
def test_serve_refuses_pins_it_cannot_honour_with_one_line(tiny_backbone_dir, tmp_path, monkeypatch, capsys, pins):
    from profilekit.cli import main
    from profilekit.settings import get_settings

    for name in ("PROFILEKIT_DATABASE_URL", "PROFILEKIT_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROFILEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PROFILEKIT_BACKBONE_PATH", str(tiny_backbone_dir))
    monkeypatch.setenv("PROFILEKIT_DEFAULT_POOL_SIZE", "12")
    monkeypatch.setenv("PROFILEKIT_PINNED_PROFILES", pins)
    get_settings.cache_clear()
    try:
        assert main(["serve", "--no-worker", "--port", "0"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "profilekit: error: PROFILEKIT_PINNED_PROFILES names an unknown profile" in err and "nobody" in err
    assert "Traceback" not in err


def test_a_bad_environment_setting_is_one_line_naming_the_variable_and_its_value(monkeypatch, capsys):
    from profilekit.cli import main
    from profilekit.settings import get_settings

    monkeypatch.setenv("PROFILEKIT_MAX_BATCH_SIZE", "sixty-four")
    monkeypatch.setenv("PROFILEKIT_POOL_STORE", "/var/pools")
    get_settings.cache_clear()
    try:
        assert main(["serve", "--no-worker", "--port", "0"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "PROFILEKIT_MAX_BATCH_SIZE='sixty-four'" in err and "valid integer" in err
    assert "PROFILEKIT_POOL_STORE='/var/pools'" in err and "Traceback" not in err
