"""The typed configuration schema: file, environment and CLI precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from joist.core.errors import ValidationError
from joist.core.settings import Settings, load_settings, options, render_toml

ROOT = Path(__file__).resolve().parents[3]


def test_default_toml_is_generated_from_schema() -> None:
    assert (ROOT / "config" / "default.toml").read_text(encoding="utf-8") == render_toml()


def test_example_toml_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "example.toml", env={}, search=False)
    assert settings.server.host == "0.0.0.0"
    assert settings.assetstore.reserve_mb == 10240


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    config = tmp_path / "joist.toml"
    config.write_text('[server]\nport = 9001\nhost = "::1"\n[sftp]\nport = 9022\n')
    settings = load_settings(config, env={"JOIST_SERVER__PORT": "9002"},
                             overrides={"sftp.port": "9023"}, search=False)
    assert settings.server.port == 9002  # env beats file
    assert settings.server.host == "::1"  # file beats default
    assert settings.sftp.port == 9023  # CLI beats file


def test_joist_config_env(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('data_dir = "/tmp/x"\n')
    assert load_settings(env={"JOIST_CONFIG": str(config)}).data_dir == "/tmp/x"


@pytest.mark.parametrize("env", [
    {"JOIST_SERVER__PORT": "eighty"},
    {"JOIST_DATABASE__ENGINE": "oracle"},
    {"JOIST_WEBDAV__ENABLED": "maybe"},
    {"JOIST_NOSUCH__KEY": "1"},
])
def test_bad_environment_values(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        load_settings(env=env, search=False)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nprot = 1\n")
    with pytest.raises(ValidationError, match=r"server\.prot"):
        load_settings(config, env={}, search=False)


def test_every_option_has_help_and_env_name() -> None:
    for opt in options():
        assert opt.help, opt.key
        assert opt.env_name.startswith("JOIST_")
    assert Settings().sqlite_path.name == "joist.db"
