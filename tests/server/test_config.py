"""Settings: environment, a TOML file, secrets that never print, state under the data dir."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from reapi_server.config import Settings, describe_settings_error


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


def test_unknown_keys_in_the_config_file_are_refused(monkeypatch, tmp_path):
    config = tmp_path / "reapi.toml"
    config.write_text("portt = 9999\n")
    monkeypatch.setenv("REAPI_CONFIG", str(config))
    with pytest.raises(ValidationError) as info:
        Settings()
    assert describe_settings_error(info.value) == (
        "invalid settings: unknown setting 'portt' (did you mean port?)"
    )


def test_unknown_reapi_environment_variables_are_refused(monkeypatch):
    monkeypatch.setenv("REAPI_REQUESTS_PER_MINUT", "5")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert describe_settings_error(info.value) == (
        "invalid settings: unknown environment variable REAPI_REQUESTS_PER_MINUT "
        "(did you mean REAPI_REQUESTS_PER_MINUTE?)"
    )


def test_the_sdk_variables_and_nested_settings_are_known(monkeypatch):
    for name in ("REAPI_BASE_URL", "REAPI_API_KEY", "REAPI_CATALOG", "REAPI_FAL_BASE_URL"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("REAPI_PROVIDER_BASE_URLS__OPENAI", "http://x")
    assert Settings().provider_base_urls == {"openai": "http://x"}


@pytest.mark.parametrize(
    ("config_text", "env", "expected"),
    [
        ("port = 'not-a-number'\n", {}, "error: invalid settings: port: Input should be"),
        ("port = [\n", {}, "error: the config file is not valid TOML"),
        (None, {}, "cannot be read (no such file)"),
        ("", {"REAPI_STORAGE_BACKEND": "s4"}, "error: invalid settings: storage_backend: Input"),
    ],
)
def test_config_errors_are_one_line_without_a_traceback(tmp_path, config_text, env, expected):
    config = tmp_path / "reapi.toml"
    if config_text is not None:
        config.write_text(config_text)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reapi-server"), "migrate", "--data-dir", str(tmp_path)],
        env={**os.environ, "REAPI_CONFIG": str(config), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "not-a-number" not in done.stderr  # the value given is never repeated


@pytest.mark.parametrize("value", ["inf", "1e400", "nan"])
@pytest.mark.parametrize(
    "name", ["audit_retention_days", "retention_days", "drain_seconds", "drain_delay_seconds"]
)
def test_a_setting_is_never_infinite(monkeypatch, name, value):
    """ "inf" days would keep rows for ever (and print "inf days" in the privacy policy)."""
    monkeypatch.setenv(f"REAPI_{name.upper()}", value)
    with pytest.raises(ValidationError, match=name):
        Settings()


def test_the_drain_delay_is_off_by_default_and_never_negative(monkeypatch):
    assert Settings().drain_delay_seconds == 0  # `make demo` and a bare `serve` stop at once
    monkeypatch.setenv("REAPI_DRAIN_DELAY_SECONDS", "3")
    assert Settings().drain_delay_seconds == 3
    monkeypatch.setenv("REAPI_DRAIN_DELAY_SECONDS", "-1")
    with pytest.raises(ValidationError, match="drain_delay_seconds"):
        Settings()
