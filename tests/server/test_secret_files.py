"""Every secret setting can come from a file: `REAPI_<NAME>_FILE`, or a file named after it in
`REAPI_SECRETS_DIR` (Docker and Compose secrets, systemd credentials)."""

import pytest
from pydantic import ValidationError

from reapi_server.config import ConfigError, Settings
from reapi_server.secret_files import secret_settings


def test_every_secret_setting_is_covered():
    assert {
        "secret_key",
        "metrics_token",
        "s3_access_key_id",
        "s3_secret_access_key",
        "redis_url",
        "database_url",
        "provider_keys",
    } <= set(secret_settings(Settings))


def test_file_variables(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("fleet-secret\n")
    (tmp_path / "openai").write_text("sk-from-a-file")
    (tmp_path / "redis").write_text("redis://:pw@redis:6379/0\n")
    monkeypatch.setenv("REAPI_SECRET_KEY_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("REAPI_PROVIDER_KEYS__OPENAI_FILE", str(tmp_path / "openai"))
    monkeypatch.setenv("REAPI_REDIS_URL_FILE", str(tmp_path / "redis"))
    settings = Settings()
    assert settings.secret_key.get_secret_value() == "fleet-secret"
    assert settings.provider_keys["openai"].get_secret_value() == "sk-from-a-file"
    assert settings.redis_url.get_secret_value() == "redis://:pw@redis:6379/0"


def test_a_secrets_directory(monkeypatch, tmp_path):
    (tmp_path / "secret_key").write_text("from-the-dir\n")
    (tmp_path / "provider_keys__fal").write_text("fal-key")
    (tmp_path / "database_url").write_text("postgresql+asyncpg://u:pw@db/reapi")
    (tmp_path / "unrelated").write_text("x")
    monkeypatch.setenv("REAPI_SECRETS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.secret_key.get_secret_value() == "from-the-dir"
    assert settings.provider_keys["fal"].get_secret_value() == "fal-key"
    assert settings.database_url == "postgresql+asyncpg://u:pw@db/reapi"


def test_the_environment_wins_over_a_file(monkeypatch, tmp_path):
    (tmp_path / "secret_key").write_text("from-the-dir")
    monkeypatch.setenv("REAPI_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("REAPI_SECRET_KEY", "from-the-environment")
    assert Settings().secret_key.get_secret_value() == "from-the-environment"


def test_an_unreadable_file_names_the_variable_not_the_contents(monkeypatch, tmp_path):
    monkeypatch.setenv("REAPI_METRICS_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as refused:
        Settings()
    assert "REAPI_METRICS_TOKEN_FILE" in str(refused.value)
    assert "missing" in str(refused.value)


def test_a_secrets_directory_that_is_not_there_stops_the_start(tmp_path):
    """A typo in REAPI_SECRETS_DIR (or systemd credentials not loaded) was ignored: every
    secret it held was unset without a word, `database_url` fell back to a fresh SQLite file in
    the data dir and S3 had no credentials, and `serve` started on that."""
    from typer.testing import CliRunner

    from reapi_server.cli import app

    env = {"REAPI_DATA_DIR": str(tmp_path / "data"), "REAPI_SECRETS_DIR": str(tmp_path / "nope")}
    for command in (["check-config"], ["accounts", "show", "--email", "a@example.com"]):
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 1
        assert result.output.strip() == (
            f"error: REAPI_SECRETS_DIR: cannot read the directory {tmp_path / 'nope'} "
            "(No such file or directory)"
        )
    assert not (tmp_path / "data").exists()


def test_an_empty_secret_key_is_refused(tmp_path, monkeypatch):
    """An empty REAPI_SECRET_KEY_FILE made the empty string the fleet's secret: every keyed
    hash (idempotency fingerprints, webhook secrets, output names) keyed with nothing."""
    empty = tmp_path / "secret_key"
    empty.write_text("\n")
    monkeypatch.setenv("REAPI_SECRET_KEY_FILE", str(empty))
    with pytest.raises(ValidationError, match="secret_key is empty"):
        Settings()
