"""`reapi-server check-config`: every problem of a configuration in one line each (unknown names
with the nearest valid one, refused values, what it points at that does not answer), exit
status 1, no traceback; `serve` runs the same checks and does not start on them."""

import subprocess

from tests.server.live import free_port
from tests.server.test_cli import _bin
from typer.testing import CliRunner

from reapi_server.cli import app

runner = CliRunner()


def _check(tmp_path, env: dict[str, str], *args: str):
    env = {"REAPI_DATA_DIR": str(tmp_path / "data"), "REAPI_CONFIG": None, **env}
    return runner.invoke(app, ["check-config", *args], env=env)


def test_a_good_configuration(tmp_path):
    result = _check(tmp_path, {"REAPI_REQUESTS_PER_MINUTE": "100"})
    assert result.exit_code == 0, result.output
    assert "configuration ok" in result.output


def test_every_problem_in_a_line_of_its_own(tmp_path):
    config = tmp_path / "reapi.toml"
    config.write_text('request_per_minute = 5\nstorage_backend = "s3"\n')
    dead_port = free_port()
    result = _check(
        tmp_path,
        {
            "REAPI_REQUESTS_PER_MINUTES": "5",
            "REAPI_SECRET_KEY": "the-secret-itself",
        },
        "--config",
        str(config),
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert (
        "error: unknown environment variable REAPI_REQUESTS_PER_MINUTES "
        "(did you mean REAPI_REQUESTS_PER_MINUTE?)"
    ) in lines
    assert (
        "error: unknown setting 'request_per_minute' (did you mean requests_per_minute?)" in lines
    )
    assert "error: storage_backend = s3 needs s3_bucket (REAPI_S3_BUCKET)" in lines
    assert "Traceback" not in result.output
    assert "the-secret-itself" not in result.output
    # and one that answers nothing:
    redis = _check(tmp_path, {"REAPI_REDIS_URL": f"redis://127.0.0.1:{dead_port}/0"})
    assert redis.exit_code == 1
    assert redis.output.strip().splitlines() == ["error: redis: unreachable (ConnectionError)"]


def test_an_unreachable_database(tmp_path):
    url = f"postgresql+asyncpg://reapi:pw@127.0.0.1:{free_port()}/reapi"
    result = _check(tmp_path, {"REAPI_DATABASE_URL": url})
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: database: nothing accepts connections at database_url's host")
    assert "pw" not in result.output


def test_serve_does_not_start_on_them(tmp_path):
    result = subprocess.run(
        [_bin("reapi-server"), "serve", "--data-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "REAPI_PORT": "8000", "REAPI_HOTS": "0.0.0.0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown environment variable REAPI_HOTS (did you mean REAPI_HOST?)"
    )
    assert not (tmp_path / "reapi.db").exists()


def test_a_list_or_table_that_is_not_json(tmp_path):
    """`REAPI_FORWARDED_ALLOW_IPS=["10.0.0.1"]` in a file a shell sources loses its quotes
    (`[10.0.0.1]`); a provider key table typed by hand loses a brace. That was a traceback of
    pydantic-settings' internals, not a line naming the setting."""
    result = _check(
        tmp_path,
        {"REAPI_FORWARDED_ALLOW_IPS": "[10.0.0.1]", "REAPI_PROVIDER_KEYS": '{"openai": "sk-x'},
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(
        "error: forwarded_allow_ips: REAPI_FORWARDED_ALLOW_IPS is not valid JSON"
    )
    served = subprocess.run(
        [_bin("reapi-server"), "serve", "--data-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "REAPI_PROVIDER_KEYS": '{"openai": "sk-secret-value'},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 1
    [line] = served.stderr.strip().splitlines()
    assert line.startswith("error: provider_keys: REAPI_PROVIDER_KEYS is not valid JSON")
    assert "sk-secret-value" not in served.stderr


def test_urls_that_cannot_work_are_named(tmp_path):
    """A `postgres://` URL (as hosted databases hand it out) was a traceback of SQLAlchemy's
    plugin loader at start, a Redis URL of another scheme one of redis-py's, and a
    `public_base_url` without a scheme was taken (every output URL then broken)."""
    result = _check(
        tmp_path,
        {
            "REAPI_DATABASE_URL": "mysql://reapi:db-password@db/reapi",
            "REAPI_REDIS_URL": "http://:redis-password@cache:6379",
            "REAPI_PUBLIC_BASE_URL": "api.example.com",
        },
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "error: database_url is postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path "
        "('mysql://' is not one)",
        "error: public_base_url is an http:// or https:// URL (https://api.example.com)",
        "error: redis_url is redis://host:6379/0 (rediss:// for TLS, or unix://)",
    ]
    for secret in ("db-password", "redis-password"):
        assert secret not in result.output


def test_a_postgres_url_means_asyncpg():
    from reapi_server.config import Settings

    url = "postgres://reapi:pw@db:5432/reapi"
    assert Settings(database_url=url).database_url == "postgresql+asyncpg://reapi:pw@db:5432/reapi"
    url = "postgresql://reapi@db/reapi"
    assert Settings(database_url=url).database_url == "postgresql+asyncpg://reapi@db/reapi"


def test_administration_commands_check_their_flags_and_urls(tmp_path):
    """The administration commands took `--database-url` (and the environment's, after a
    flag) without the settings' checks: `postgres://` was a traceback."""
    result = runner.invoke(
        app,
        ["accounts", "show", "--email", "a@example.com", "--database-url", "mysql://u:pw-9@h/d"],
        env={"REAPI_DATA_DIR": str(tmp_path / "data"), "REAPI_CONFIG": None},
    )
    assert result.exit_code == 1
    assert "'mysql://' is not one" in result.output
    assert "pw-9" not in result.output and "Traceback" not in result.output


def test_a_mistyped_file_in_the_secrets_directory(tmp_path):
    """`secret_kye` in REAPI_SECRETS_DIR was read by nothing and said nothing: `secret_key`
    silently unset, where the same typo in the environment is refused. Files of unrelated
    names (another service's secrets) are still left alone."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "secret_kye").write_text("a-secret-value\n")
    (secrets_dir / "provider_key__openai").write_text("sk-value\n")
    (secrets_dir / "postgres_password").write_text("pw\n")
    # Another application's secrets beside ours, close in spelling: left alone (they stopped
    # the start).
    (secrets_dir / "secret_key_base").write_text("rails\n")
    (secrets_dir / "jwt_secret_key").write_text("jwt\n")
    result = _check(tmp_path, {"REAPI_SECRETS_DIR": str(secrets_dir)})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unknown secret file 'provider_key__openai' in REAPI_SECRETS_DIR "
        "(did you mean provider_keys__openai?)",
        "error: unknown secret file 'secret_kye' in REAPI_SECRETS_DIR (did you mean secret_key?)",
    ]
    assert "a-secret-value" not in result.output


def test_a_database_port_that_is_no_number(tmp_path):
    result = _check(tmp_path, {"REAPI_DATABASE_URL": "postgresql+asyncpg://u:pw-7@db:5432x/r"})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: database_url: its port is not a number from 0 to 65535"
    ]
    assert "pw-7" not in result.output


def test_a_database_password_with_characters_a_url_parser_stops_at(tmp_path):
    """An unencoded `#`, `/` or `?` in the password: SQLAlchemy reads such a URL, and the
    gateway ran on it; the port check read it with `urlsplit` and refused it as a bad port."""
    from reapi_server.config import Settings

    for url in [
        "postgresql+asyncpg://u:ab#1@db:5432/r",
        "postgresql+asyncpg://u:a/b@db:5432/r",
        "postgres://u:a?b@db/r",
    ]:
        assert Settings(database_url=url).database_url.startswith("postgresql+asyncpg://u:a")
    result = _check(tmp_path, {"REAPI_DATABASE_URL": "postgres://u:pw-8@db:54x/r"})
    assert result.output.strip().splitlines() == [
        "error: database_url: its port is not a number from 0 to 65535"
    ]


def test_a_hosted_database_s_sslmode_is_given_to_asyncpg_as_ssl():
    """`postgres://...?sslmode=require` (Heroku, Render, Neon): asyncpg's connect() has no
    `sslmode`, and the first connection failed on it."""
    from sqlalchemy.engine import make_url

    from reapi_server.config import Settings

    url = Settings(database_url="postgres://u:p#1@db:5432/r?sslmode=require").database_url
    parsed = make_url(url)
    assert url.startswith("postgresql+asyncpg://")
    assert dict(parsed.query) == {"ssl": "require"}
    assert parsed.password == "p#1" and parsed.port == 5432 and parsed.database == "r"


def test_file_mail_on_a_public_https_gateway_is_a_warning(tmp_path, monkeypatch, capsys):
    """The default `file` mail backend on a gateway served over https: nobody would get a
    verification link. Said by check-config and serve, stopping neither."""
    public = {"REAPI_PUBLIC_BASE_URL": "https://api.example.com"}
    result = _check(tmp_path, public)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith('warning: email_backend = "file" with an https public_base_url')
    assert lines[-1] == "configuration ok"
    assert _check(tmp_path, {"REAPI_PUBLIC_BASE_URL": "http://localhost:8000"}).output == (
        "configuration ok\n"
    )

    from reapi_server import cli

    for name, value in {"REAPI_DATA_DIR": str(tmp_path / "data"), **public}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REAPI_CONFIG", raising=False)
    settings = cli._checked(None, {})  # as `serve` checks before it starts
    assert settings.public_base_url == "https://api.example.com"
    assert "warning: email_backend" in capsys.readouterr().err


def test_an_s3_endpoint_without_its_scheme(tmp_path):
    """`REAPI_S3_ENDPOINT_URL=minio:9000` was a traceback of botocore's (`Invalid endpoint`)
    from `check-config` and `serve`, and `127.0.0.1:9000` passed every check (boto3 reads
    `127.0.0.1` as its scheme) and then failed every storage call."""
    for endpoint in ("minio:9000", "127.0.0.1:9000"):
        result = _check(
            tmp_path,
            {
                "REAPI_STORAGE_BACKEND": "s3",
                "REAPI_S3_BUCKET": "outputs",
                "REAPI_S3_ENDPOINT_URL": endpoint,
            },
        )
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert result.output.strip().splitlines() == [
            "error: s3_endpoint_url is an http:// or https:// URL"
            " (https://<account id>.r2.cloudflarestorage.com, http://minio:9000)"
        ]


def test_a_provider_the_catalog_does_not_have(tmp_path):
    """`REAPI_PROVIDER_KEYS__OPENAII` passed `check-config` ("configuration ok") and then
    stopped `serve` with a traceback from its worker (`unknown provider(s) openaii`); a
    `catalog_path` that does not exist was a traceback of both."""
    result = _check(
        tmp_path,
        {
            "REAPI_PROVIDER_KEYS__OPENAII": "sk-the-key-itself",
            "REAPI_PROVIDER_BASE_URLS": '{"zzz": "http://127.0.0.1:9"}',
        },
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: provider_keys: no provider 'openaii' in the catalog (did you mean openai?)",
        "error: provider_base_urls: no provider 'zzz' in the catalog (known: byteplus, "
        "dashscope, fal, gemini, openai, replicate, topaz, vidu, xai)",
    ]
    assert "sk-the-key-itself" not in result.output
    missing = tmp_path / "no-catalog.toml"
    result = _check(tmp_path, {"REAPI_CATALOG_PATH": str(missing)})
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: catalog: cannot read {missing} (No such file or directory)"
    )


def test_a_provider_url_without_its_scheme(tmp_path):
    """`REAPI_OPENAI_BASE_URL=127.0.0.1:9100` passed every check; every request to OpenAI then
    failed as `upstream_unreachable`."""
    result = _check(
        tmp_path,
        {
            "REAPI_OPENAI_BASE_URL": "127.0.0.1:9100",
            "REAPI_PROVIDER_BASE_URLS": '{"fal": "fal.example:443"}',
        },
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: provider_base_urls.fal is an http:// or https:// URL (http://127.0.0.1:9100/v1)",
        "error: REAPI_OPENAI_BASE_URL is an http:// or https:// URL (http://127.0.0.1:9100/v1)",
    ]


def test_a_short_secret_key_is_a_warning(tmp_path, monkeypatch, capsys):
    """The docs ask for 32 random bytes; a shorter `secret_key` was accepted without a word, a
    guessable root for every keyed hash. Said by check-config and serve, stopping neither (a
    deployment made before the check keeps starting), never with the secret itself."""
    short = "only-twenty-six-characters"
    result = _check(tmp_path, {"REAPI_SECRET_KEY": short})
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("warning: secret_key is shorter than 32 bytes")
    assert "openssl rand -hex 32" in lines[0] and short not in result.output
    assert lines[-1] == "configuration ok"
    long_enough = _check(tmp_path, {"REAPI_SECRET_KEY": "k" * 32})
    assert long_enough.output == "configuration ok\n"
    assert _check(tmp_path, {}).output == "configuration ok\n"  # generated: nothing to say

    from reapi_server import cli

    for name, value in {
        "REAPI_DATA_DIR": str(tmp_path / "data"),
        "REAPI_SECRET_KEY": short,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REAPI_CONFIG", raising=False)
    cli._checked(None, {})  # as `serve` checks before it starts
    assert "warning: secret_key is shorter than 32 bytes" in capsys.readouterr().err


def test_nested_secrets_from_files(tmp_path):
    """Billing's Stripe secrets from REAPI_SECRETS_DIR beside the config file's [billing]:
    checked as `serve` reads them, nothing of them printed; a mistyped nested variable or file
    is named with the one meant."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "billing__stripe_secret_key").write_text("sk_test_value_9\n")
    (secrets_dir / "billing__stripe_webhook_secrets").write_text("whsec_value_8\nwhsec_value_7\n")
    config = tmp_path / "reapi.toml"
    config.write_text(
        '[billing]\nstripe_api_base = "http://127.0.0.1:9/"\n[[billing.packs]]\n'
        'id = "starter"\nname = "1,000 credits"\ncredits = 1000\nunit_amount = 1000\n'
    )
    env = {"REAPI_SECRETS_DIR": str(secrets_dir)}
    result = _check(tmp_path, env, "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "configuration ok" in result.output
    (secrets_dir / "oauth__github__client_secrt").write_text("github-value-6\n")
    env["REAPI_BILLING__STRIPE_SECRT_KEY_FILE"] = str(secrets_dir / "billing__stripe_secret_key")
    result = _check(tmp_path, env, "--config", str(config))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unknown environment variable REAPI_BILLING__STRIPE_SECRT_KEY_FILE "
        "(did you mean REAPI_BILLING__STRIPE_SECRET_KEY_FILE?)",
        "error: unknown secret file 'oauth__github__client_secrt' in REAPI_SECRETS_DIR "
        "(did you mean oauth__github__client_secret?)",
    ]
    assert not any(value in result.output for value in ["_value_", "github-value"])
