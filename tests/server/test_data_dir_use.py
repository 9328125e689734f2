"""The data dir is made only when something is kept there: the SQLite database, outputs on
local disk, mail as files. Administration commands against a PostgreSQL fleet made an empty
`./reapi-data` (or `--data-dir`) in whichever directory the operator ran them from."""

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reapi_server.cli import app
from reapi_server.config import Settings

runner = CliRunner()
EMAIL = "ops@example.com"


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def fresh_postgres(postgres_server) -> str:
    import secrets

    name = f"t_{secrets.token_hex(6)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    return str(postgres_server.url(name))


def test_where_the_database_and_the_files_live(tmp_path: Path):
    data = tmp_path / "d"
    assert Settings(data_dir=data).database_in_data_dir
    inside = Settings(data_dir=data, database_url=f"sqlite+aiosqlite:///{data}/other.db")
    assert inside.database_in_data_dir
    elsewhere = Settings(data_dir=data, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert not elsewhere.database_in_data_dir
    postgres = Settings(data_dir=data, database_url="postgresql+asyncpg://u@db.internal/reapi")
    assert not postgres.database_in_data_dir
    assert postgres.writes_data_dir  # outputs on local disk and mail as files, by default
    elsewhere_too = {
        "storage_backend": "s3",
        "s3_bucket": "b",
        "email_backend": "resend",
        "resend_api_key": "re_x",
        "public_base_url": "https://api.example.com",
        "email_from": "reapi <noreply@example.com>",
    }
    hosted = Settings(data_dir=data, database_url=postgres.database_url, **elsewhere_too)
    assert not hosted.writes_data_dir
    mail_as_files = {**elsewhere_too, "email_backend": "file"}
    assert Settings(
        data_dir=data, database_url=postgres.database_url, **mail_as_files
    ).writes_data_dir


@pytest.mark.postgres
def test_administration_on_postgresql_makes_no_data_dir(
    tmp_path: Path, fresh_postgres: str, moto_server, monkeypatch: pytest.MonkeyPatch
):
    data = tmp_path / "reapi-data"
    where = ["--data-dir", str(data), "--database-url", fresh_postgres]
    cli("migrate", *where)
    cli("accounts", "create", "--email", EMAIL, "--credits", "10", *where)
    cli("accounts", "show", "--email", EMAIL, *where)
    cli("keys", "create", "--email", EMAIL, "--name", "ci", *where)
    cli("keys", "list", "--email", EMAIL, *where)
    cli("credits", "grant", "--email", EMAIL, "--credits", "5", *where)
    cli("users", "list", *where)
    cli("promo", "list", *where)
    cli("payments", "list", *where)
    cli("usage", "export", "--email", EMAIL, "--output", str(tmp_path / "usage.csv"), *where)
    assert not data.exists()
    # Commands that open the whole gateway (storage, mail): nothing of it is on this disk.
    for name, value in moto_server.settings(moto_server.new_bucket()).items():
        monkeypatch.setenv(f"REAPI_{name.upper()}", str(value))
    monkeypatch.setenv("REAPI_EMAIL_BACKEND", "resend")
    monkeypatch.setenv("REAPI_RESEND_API_KEY", "re_test")
    monkeypatch.setenv("REAPI_PUBLIC_BASE_URL", "https://api.example.com")
    monkeypatch.setenv("REAPI_EMAIL_FROM", "reapi <noreply@example.com>")
    cli("outputs", "purge", *where)
    cli("users", "export", "--email", EMAIL, *where)
    assert not data.exists()
    # Outputs on local disk: the gateway's files are kept there, so it is made, private.
    monkeypatch.setenv("REAPI_STORAGE_BACKEND", "local")
    cli("outputs", "purge", *where)
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700


def test_on_sqlite_the_data_dir_is_made_private(tmp_path: Path):
    data = tmp_path / "reapi-data"
    cli("accounts", "create", "--email", EMAIL, *["--data-dir", str(data)])
    assert (data / "reapi.db").exists()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
