"""The relay's settings: documented in config.example.toml, read from config.toml and the
environment, refused with a Chinese reason when wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import load_settings
from matrix.errors import MatrixError
from matrix.relay import RelayOptions

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_example_documents_every_relay_setting_with_its_default():
    documented = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["relay"]
    assert set(documented) == set(RelayOptions.model_fields)
    assert RelayOptions(**documented) == RelayOptions()


def test_relay_settings_come_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "config.toml"
    config.write_text('[relay]\nrate = 0.5\nwatch_words = ["罢课"]\n', encoding="utf-8")
    monkeypatch.setenv("QUNMATRIX_RELAY__MAX_ATTEMPTS", "3")
    settings = load_settings(config)
    assert (settings.relay.rate, settings.relay.watch_words) == (0.5, ["罢课"])
    assert settings.relay.max_attempts == 3


def test_a_bad_relay_setting_is_refused_in_chinese(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text("[relay]\nrate = -1\n", encoding="utf-8")
    with pytest.raises(MatrixError, match=r"relay\.rate：应不小于 0"):
        load_settings(config)
