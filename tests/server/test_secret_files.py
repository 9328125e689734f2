"""Every secret setting can come from a file: `REAPI_<NAME>_FILE`, or a file named after it in
`REAPI_SECRETS_DIR` (Docker and Compose secrets, systemd credentials)."""

import asyncio
import os

import pytest
from pydantic import SecretStr, ValidationError

from reapi_server.config import ConfigError, Settings, unknown_variables
from reapi_server.secret_files import mistyped_secret_files, secret_settings

STRIPE_KEY = "sk_test_from_a_file"
WEBHOOK_SECRETS = ["whsec_old_one", "whsec_new_one"]


def test_every_secret_setting_is_covered():
    """Found by walking the settings' models: a secret added to a nested model (billing, the
    sign-in providers) can come from a file without a word more."""
    assert set(secret_settings(Settings)) == {
        "secret_key",
        "metrics_token",
        "s3_access_key_id",
        "s3_secret_access_key",
        "redis_url",
        "database_url",
        "provider_keys",
        "resend_api_key",
        "turnstile_secret_key",
        "billing__stripe_secret_key",
        "billing__stripe_webhook_secrets",
        "oauth__github__client_secret",
        "oauth__google__client_secret",
    }


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


def test_the_whole_table_of_provider_keys_from_a_file(monkeypatch, tmp_path):
    """The JSON object REAPI_PROVIDER_KEYS takes (it was read as a string, and refused)."""
    (tmp_path / "keys").write_text('{"openai": "sk-from-a-file", "fal": "fal-key"}\n')
    monkeypatch.setenv("REAPI_PROVIDER_KEYS_FILE", str(tmp_path / "keys"))
    keys = Settings().provider_keys
    assert {name: key.get_secret_value() for name, key in keys.items()} == {
        "openai": "sk-from-a-file",
        "fal": "fal-key",
    }
    (tmp_path / "keys").write_text("sk-not-a-table")
    with pytest.raises(ConfigError) as refused:
        Settings()
    assert str(refused.value) == (
        f'REAPI_PROVIDER_KEYS_FILE: {tmp_path / "keys"} is not a JSON object ({{"name": "..."}})'
    )


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


def test_nested_secrets_from_file_variables(monkeypatch, tmp_path):
    """`REAPI_BILLING__STRIPE_SECRET_KEY_FILE`: the nested setting's variable plus `_FILE`."""
    files = {
        "REAPI_BILLING__STRIPE_SECRET_KEY_FILE": STRIPE_KEY + "\n",
        "REAPI_BILLING__STRIPE_WEBHOOK_SECRETS_FILE": "\n".join(WEBHOOK_SECRETS) + "\n",
        "REAPI_OAUTH__GITHUB__CLIENT_SECRET_FILE": "github-secret\n",
        "REAPI_OAUTH__GOOGLE__CLIENT_SECRET_FILE": "GOCSPX-google",
    }
    for variable, text in files.items():
        (tmp_path / variable).write_text(text)
        monkeypatch.setenv(variable, str(tmp_path / variable))
    monkeypatch.setenv("REAPI_OAUTH__GITHUB__CLIENT_ID", "Iv1.github")
    assert unknown_variables(dict(os.environ)) == []
    settings = Settings()
    assert settings.billing.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert _values(settings.billing.stripe_webhook_secrets) == WEBHOOK_SECRETS
    assert settings.oauth.github.client_secret.get_secret_value() == "github-secret"
    assert settings.oauth.github.configured and settings.oauth.github.client_id == "Iv1.github"
    assert settings.oauth.google.client_secret.get_secret_value() == "GOCSPX-google"
    printed = repr(settings) + str(settings)
    assert not any(secret in printed for secret in [STRIPE_KEY, *WEBHOOK_SECRETS, "GOCSPX"])


def test_nested_secrets_from_a_secrets_directory(monkeypatch, tmp_path):
    (tmp_path / "billing__stripe_secret_key").write_text(STRIPE_KEY + "\n")
    (tmp_path / "billing__stripe_webhook_secrets").write_text(
        '["whsec_old_one", "whsec_new_one"]\n'
    )
    (tmp_path / "oauth__google__client_secret").write_text("GOCSPX-google\n")
    monkeypatch.setenv("REAPI_SECRETS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.billing.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert _values(settings.billing.stripe_webhook_secrets) == WEBHOOK_SECRETS
    assert settings.oauth.google.client_secret.get_secret_value() == "GOCSPX-google"
    assert settings.oauth.github.client_secret is None
    assert mistyped_secret_files(Settings, os.environ) == []


@pytest.mark.parametrize(
    "text",
    [
        "whsec_old_one\nwhsec_new_one\n",
        "whsec_old_one\r\nwhsec_new_one\r\n",  # written on Windows
        "\nwhsec_old_one\n\n  whsec_new_one  \n\n",  # blank lines, stray spaces
        '["whsec_old_one", "whsec_new_one"]',  # as REAPI_BILLING__STRIPE_WEBHOOK_SECRETS takes
        '  [\n  "whsec_old_one",\n  "whsec_new_one"\n]\n',
    ],
)
def test_webhook_secrets_one_a_line_or_a_json_list(monkeypatch, tmp_path, text):
    _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, text)
    assert _values(Settings().billing.stripe_webhook_secrets) == WEBHOOK_SECRETS


def test_one_webhook_secret_alone(monkeypatch, tmp_path):
    _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, "whsec_new_one\n")
    assert _values(Settings().billing.stripe_webhook_secrets) == ["whsec_new_one"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "holds no secret"),
        ("\n\n", "holds no secret"),
        ("[]", "holds no secret"),
        ('["whsec_old_one", ', "is not a JSON list"),
        ('["whsec_old_one", 1]', "is not a JSON list of strings"),
    ],
)
def test_a_webhook_secrets_file_that_holds_none_is_refused(monkeypatch, tmp_path, text, why):
    """An empty file would switch the webhook endpoint off without a word (none configured):
    a file named is meant to hold something."""
    path = _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        Settings()
    assert str(refused.value).startswith(f"REAPI_BILLING__STRIPE_WEBHOOK_SECRETS_FILE: {path} ")
    assert why in str(refused.value) and "whsec_old_one" not in str(refused.value)


def test_a_bad_webhook_secret_from_a_file_is_refused_unprinted(monkeypatch, tmp_path):
    from reapi_server.config import settings_error_lines

    _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, "whsec_new_one\nnot-a-secret-7\n")
    with pytest.raises(ValidationError) as refused:
        Settings()
    [line] = settings_error_lines(refused.value)
    assert line.startswith("billing.stripe_webhook_secrets: each must be the webhook endpoint")
    assert "not-a-secret-7" not in line and "whsec_new_one" not in line


def test_a_nested_file_merges_with_the_config_file_and_the_environment(monkeypatch, tmp_path):
    """The secret key from a file, the packs from the config file's [billing], a limit from the
    environment: one billing table of the three (the place where nested files most easily
    replace the table instead)."""
    config = tmp_path / "reapi.toml"
    config.write_text(
        "[billing]\n"
        'stripe_api_base = "http://127.0.0.1:9/"\n'
        'currency = "usd"\n'
        "[[billing.packs]]\n"
        'id = "starter"\nname = "1,000 credits"\ncredits = 1000\nunit_amount = 1000\n'
        'currency = "usd"\n'
        "[oauth.github]\n"
        'client_id = "Iv1.from-the-config"\n'
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "billing__stripe_secret_key").write_text(STRIPE_KEY)
    (secrets / "oauth__github__client_secret").write_text("github-secret")
    (tmp_path / "webhook").write_text("whsec_new_one")
    monkeypatch.setenv("REAPI_CONFIG", str(config))
    monkeypatch.setenv("REAPI_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("REAPI_BILLING__STRIPE_WEBHOOK_SECRETS_FILE", str(tmp_path / "webhook"))
    monkeypatch.setenv("REAPI_BILLING__CHECKOUT_LIMIT", "5")
    billing = Settings().billing
    assert billing.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert _values(billing.stripe_webhook_secrets) == ["whsec_new_one"]
    assert [pack.id for pack in billing.packs] == ["starter"]
    assert (billing.currency, billing.stripe_api_base) == ("usd", "http://127.0.0.1:9/")
    assert billing.checkout_limit == 5
    assert Settings().oauth.github.configured


def test_nested_precedence_environment_then_file_then_config_file(monkeypatch, tmp_path):
    """As for the top-level secrets: a value given directly wins over a file, a file over the
    config file."""
    config = tmp_path / "reapi.toml"
    config.write_text(
        '[billing]\nstripe_secret_key = "sk_test_from_the_config"\n'
        'stripe_webhook_secrets = ["whsec_from_the_config"]\n'
    )
    monkeypatch.setenv("REAPI_CONFIG", str(config))
    _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, "whsec_from_a_file")
    billing = Settings().billing
    assert billing.stripe_secret_key.get_secret_value() == STRIPE_KEY
    assert _values(billing.stripe_webhook_secrets) == ["whsec_from_a_file"]
    monkeypatch.setenv("REAPI_BILLING__STRIPE_SECRET_KEY", "sk_test_from_the_environment")
    monkeypatch.setenv("REAPI_BILLING__STRIPE_WEBHOOK_SECRETS", '["whsec_from_the_env"]')
    billing = Settings().billing
    assert billing.stripe_secret_key.get_secret_value() == "sk_test_from_the_environment"
    assert _values(billing.stripe_webhook_secrets) == ["whsec_from_the_env"]
    # and the command line (`init` values) over all of them
    given = Settings(billing={"stripe_secret_key": "sk_test_given"}).billing
    assert given.stripe_secret_key.get_secret_value() == "sk_test_given"


def test_an_unreadable_nested_file_names_the_variable_and_the_path(monkeypatch, tmp_path):
    missing = tmp_path / "stripe"
    monkeypatch.setenv("REAPI_BILLING__STRIPE_SECRET_KEY_FILE", str(missing))
    with pytest.raises(ConfigError) as refused:
        Settings()
    assert str(refused.value) == (
        f"REAPI_BILLING__STRIPE_SECRET_KEY_FILE: cannot read {missing} (No such file or directory)"
    )


def test_a_file_variable_is_not_read_as_a_value_of_its_own(monkeypatch, tmp_path):
    """pydantic-settings read `REAPI_PROVIDER_KEYS__OPENAI_FILE` as well, as the provider
    key `openai_file` holding the path; `REAPI_BILLING__..._FILE` as an unknown billing
    setting (the start refused)."""
    (tmp_path / "openai").write_text("sk-from-a-file")
    monkeypatch.setenv("REAPI_PROVIDER_KEYS__OPENAI_FILE", str(tmp_path / "openai"))
    monkeypatch.setenv("REAPI_PROVIDER_KEYS__FAL", "fal-from-the-environment")
    keys = Settings().provider_keys
    assert sorted(keys) == ["fal", "openai"]
    assert keys["openai"].get_secret_value() == "sk-from-a-file"


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("REAPI_BILLING__STRIPE_SECRT_KEY_FILE", "REAPI_BILLING__STRIPE_SECRET_KEY_FILE"),
        ("REAPI_BILLING__STRIPE_WEBHOOK_SECRET_FILE", "REAPI_BILLING__STRIPE_WEBHOOK_SECRETS_FILE"),
        ("REAPI_OAUTH__GITHUB__CLIENT_SECRETS_FILE", "REAPI_OAUTH__GITHUB__CLIENT_SECRET_FILE"),
        ("REAPI_BILLING__PACKS_FILE", None),  # no secret: never read from a file
    ],
)
def test_a_mistyped_nested_file_variable_is_refused(monkeypatch, tmp_path, variable, meant):
    (tmp_path / "secret").write_text("a-secret-value")
    monkeypatch.setenv(variable, str(tmp_path / "secret"))
    [message] = unknown_variables(dict(os.environ))
    assert message.startswith(f"unknown environment variable {variable}")
    if meant:
        assert message.endswith(f"(did you mean {meant}?)")
    with pytest.raises(ValidationError, match=f"unknown environment variable {variable}"):
        Settings()


def test_mistyped_nested_files_in_the_secrets_directory(tmp_path):
    for name in [
        "billing__stripe_secrt_key",
        "biling__stripe_secret_key",
        "billing__stripe_key",
        "billing__api_token",
        "oauth__github__client_secrt",
        "billing__stripe_webhook_secrets",  # read: not reported
        "stripe_secret_key",  # another service's (no billing__): left alone
        "github_client_secret",
    ]:
        (tmp_path / name).write_text("x")
    problems = mistyped_secret_files(Settings, {"REAPI_SECRETS_DIR": str(tmp_path)})
    unknown = "unknown secret file '{}' in REAPI_SECRETS_DIR ({})"
    assert problems == [  # in the order of the file names
        unknown.format("biling__stripe_secret_key", "did you mean billing__stripe_secret_key?"),
        unknown.format(
            "billing__api_token",
            "billing has billing__stripe_secret_key, billing__stripe_webhook_secrets",
        ),
        unknown.format("billing__stripe_key", "did you mean billing__stripe_secret_key?"),
        unknown.format("billing__stripe_secrt_key", "did you mean billing__stripe_secret_key?"),
        unknown.format("oauth__github__client_secrt", "did you mean oauth__github__client_secret?"),
    ]


def _stripe_key_and_webhook_secrets(monkeypatch, tmp_path, webhook_secrets: str):
    (tmp_path / "stripe_key").write_text(STRIPE_KEY)
    path = tmp_path / "webhook_secrets"
    path.write_text(webhook_secrets)
    monkeypatch.setenv("REAPI_BILLING__STRIPE_SECRET_KEY_FILE", str(tmp_path / "stripe_key"))
    monkeypatch.setenv("REAPI_BILLING__STRIPE_WEBHOOK_SECRETS_FILE", str(path))
    return path


def _values(secrets: list[SecretStr]) -> list[str]:
    return [secret.get_secret_value() for secret in secrets]


def test_the_gateway_takes_its_stripe_secrets_from_files_alone(tmp_path):
    """The real `reapi-server serve` with the Stripe key and the webhook signing secrets only in
    REAPI_SECRETS_DIR (the packs in the config file): a purchase completed in the Stripe
    simulator is delivered signed, accepted, fetched back from Stripe with the key, credited;
    a delivery signed otherwise is refused."""
    import time

    import httpx
    from tests.server.billing_live import PACKS, SECRET
    from tests.server.served import served_gateway

    from reapi_server.testing.stripe_sim import StripeSimulator, signature_header

    data, secrets, config = tmp_path / "data", tmp_path / "secrets", tmp_path / "reapi.toml"
    secrets.mkdir()
    pack = PACKS[0]
    with StripeSimulator(retry_delays=(0.2, 0.4, 0.8)) as sim:
        (secrets / "billing__stripe_secret_key").write_text(sim.secret_key + "\n")
        (secrets / "billing__stripe_webhook_secrets").write_text(f"whsec_before_it\n{SECRET}\n")
        config.write_text(
            f'[billing]\nstripe_api_base = "{sim.base_url}"\n[[billing.packs]]\n'
            f'id = "{pack.id}"\nname = "{pack.name}"\ncredits = {pack.credits}\n'
            f'unit_amount = {pack.unit_amount}\ncurrency = "{pack.currency}"\n'
        )
        env = {"REAPI_SECRETS_DIR": str(secrets), "REAPI_CONFIG": str(config)}
        with served_gateway(data, env=env) as gateway:
            webhook = f"{gateway.base_url}/billing/stripe/webhook"
            sim.add_webhook_endpoint(webhook, SECRET)
            assert asyncio.run(_bought_through(sim, data, pack.id)) == pack.credits
            completed = sim.last_event("checkout.session.completed")["id"]
            [delivery] = sim.deliveries(completed)
            assert delivery.wait().status == 200
            body = b'{"id": "evt_forged", "type": "checkout.session.completed"}'
            forged = signature_header(body, ["whsec_not_ours"], int(time.time()))
            refused = httpx.post(webhook, content=body, headers={"stripe-signature": forged})
            assert refused.status_code == 400
    assert sim.secret_key not in gateway.text and SECRET not in gateway.text


async def _bought_through(sim, data_dir, pack_id: str) -> int:
    """The test's side of a purchase on the gateway's database (a top-up and its Checkout
    Session, paid in the simulator); the gateway does the rest. The account's balance once
    credited (0 if never)."""
    import time

    from sqlalchemy import select
    from tests.server.billing_live import billing_settings

    from reapi_server.accounts.service import create_account
    from reapi_server.billing.checkout import start_checkout
    from reapi_server.billing.service import Billing
    from reapi_server.db import Database
    from reapi_server.models import Account

    settings = Settings(data_dir=data_dir, billing=billing_settings(sim))
    db = Database(settings.resolved_database_url)
    billing = Billing.from_settings(settings, db, time.time)
    try:
        async with db.write() as session:
            account = await create_account(
                session, "buyer@example.com", credits_granted=0, now=time.time()
            )
        started = await start_checkout(
            billing, account_id=account.id, email="buyer@example.com", pack_id=pack_id
        )
        sim.complete_session(started.session_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with db.read() as session:
                balance = await session.scalar(
                    select(Account.balance).where(Account.id == account.id)
                )
            if balance:
                return int(balance)
            await asyncio.sleep(0.05)
        return 0
    finally:
        await billing.aclose()
        await db.dispose()
