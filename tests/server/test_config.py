"""Settings: environment, a TOML file, secrets that never print, state under the data dir."""

from reapi_server.config import Settings


def test_environment_and_secret_values(monkeypatch, tmp_path):
    monkeypatch.setenv("REAPI_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("REAPI_PROVIDER_KEYS__OPENAI", "sk-very-secret")
    monkeypatch.setenv("REAPI_REQUESTS_PER_MINUTE", "42")
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.requests_per_minute == 42
    assert settings.provider_keys["openai"].get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'd' / 'reapi.db')}"


def test_config_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "reapi.toml"
    config.write_text(
        'port = 9999\nrequests_per_minute = 5\n[provider_base_urls]\nopenai = "http://x"\n'
    )
    monkeypatch.setenv("REAPI_CONFIG", str(config))
    monkeypatch.setenv("REAPI_PORT", "8123")
    settings = Settings()
    assert settings.port == 8123
    assert settings.requests_per_minute == 5
    assert settings.provider_base_urls == {"openai": "http://x"}
