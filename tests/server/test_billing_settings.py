"""Billing's settings: packs from the config file or the environment, refused when they make
no sense, and what turns billing on; never a secret in an error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reapi_server.billing.settings import BillingSettings, CreditPack, format_money
from reapi_server.config import Settings, describe_settings_error


def test_packs_and_secrets_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REAPI_BILLING__STRIPE_SECRET_KEY", "sk_test_abc")
    monkeypatch.setenv("REAPI_BILLING__STRIPE_WEBHOOK_SECRETS", '["whsec_old", "whsec_new"]')
    monkeypatch.setenv(
        "REAPI_BILLING__PACKS",
        '[{"id": "starter", "name": "1,000 credits", "credits": 1000, "unit_amount": 1000},'
        ' {"id": "starter-usd", "name": "1,000 credits", "credits": 1000, "unit_amount": 1100,'
        ' "currency": "USD"}]',
    )
    settings = Settings(data_dir=tmp_path)
    billing = settings.billing
    assert billing.enabled and not billing.live
    assert [s.get_secret_value() for s in billing.stripe_webhook_secrets] == [
        "whsec_old",
        "whsec_new",
    ]
    assert billing.currencies == ["eur", "usd"]
    assert billing.pack("starter-usd").price == "11.00 USD"
    assert "sk_test_abc" not in repr(settings)
    assert billing.checkout_origin == "https://checkout.stripe.com"


def test_billing_is_off_without_a_webhook_secret_or_a_pack():
    assert not BillingSettings().enabled
    pack = CreditPack(id="a", name="A", credits=1, unit_amount=1)
    assert not BillingSettings(stripe_secret_key="sk_test_x", packs=[pack]).enabled
    assert not BillingSettings(
        stripe_secret_key="sk_test_x", stripe_webhook_secrets=["whsec_w"]
    ).enabled


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"stripe_webhook_secrets": ["whsec_1"]}, "needs billing.stripe_secret_key"),
        (
            {"packs": [{"id": "a", "name": "A", "credits": 1, "unit_amount": 1}] * 2},
            "each pack needs its own id",
        ),
        ({"packs": [{"id": "-a", "name": "A", "credits": 1, "unit_amount": 1}]}, "pack id"),
        ({"packs": [{"id": "a", "name": "A", "credits": 0, "unit_amount": 1}]}, "credits"),
        (
            {"packs": [{"id": "a", "name": "A", "credits": 1, "unit_amount": 1, "currency": "e"}]},
            "ISO 4217",
        ),
    ],
)
def test_settings_that_make_no_sense_are_refused(values, says, tmp_path):
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, billing=values)
    assert says in describe_settings_error(refused.value) + str(refused.value)


@pytest.mark.parametrize(
    "secret", ["", " ", "\t\n", "whsec_", "whsec_ ", " whsec_abc", "whsec_a b", "w", "sk_test_x"]
)
def test_a_blank_or_malformed_webhook_secret_is_refused(secret, tmp_path):
    """An empty secret would key the HMAC with "": anyone could sign a top-up. Stripe's are
    `whsec_` and more, with no spaces; the message names the setting, never the value."""
    pack = {"id": "a", "name": "A", "credits": 1, "unit_amount": 1}
    billing = {
        "stripe_secret_key": "sk_test_x",
        "stripe_webhook_secrets": ["whsec_good", secret],
        "packs": [pack],
    }
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, billing=billing)
    message = describe_settings_error(refused.value)
    assert "billing.stripe_webhook_secrets" in message and "whsec_" in message
    assert not any(value in message for value in ("whsec_good", "whsec_a", "sk_test_x"))
    with pytest.raises(ValidationError):
        BillingSettings(stripe_secret_key="sk_test_x", stripe_webhook_secrets=[secret])


@pytest.mark.parametrize("currency", ["kwd", "BHD", "jod", "omr", "tnd"])
def test_a_pack_in_a_three_decimal_currency_is_refused(currency, tmp_path):
    """Prices, refunds and receipts count hundredths: 1 KWD is 1000 fils, not 100."""
    pack = {"id": "a", "name": "A", "credits": 1, "unit_amount": 1000, "currency": currency}
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, billing={"packs": [pack]})
    message = describe_settings_error(refused.value)
    assert currency.upper() in message and "three decimals" in message


def test_a_live_key_needs_the_public_address(tmp_path):
    live = {"stripe_secret_key": "sk_live_secretvalue"}
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, billing=live)
    message = describe_settings_error(refused.value)
    assert "public_base_url" in message and "secretvalue" not in message
    assert Settings(
        data_dir=tmp_path, billing=live, public_base_url="https://x.example"
    ).billing.live


def test_money_in_each_currency_s_own_unit():
    assert format_money(123456, "eur") == "1,234.56 EUR"
    assert format_money(-500, "usd") == "-5.00 USD"
    assert format_money(1500, "jpy") == "1,500 JPY"


_STRIPE_CALL = """
import asyncio, sys
import stripe
from reapi_server.billing.settings import BillingSettings
from reapi_server.billing.stripe_api import StripeApi
from reapi_server.testing.stripe_sim import StripeSimulator

if sys.argv[1] == "attribute":
    stripe.log = "debug"

async def main(sim):
    settings = BillingSettings(stripe_secret_key=sim.secret_key, stripe_api_base=sim.base_url)
    api = StripeApi(settings)
    intent = await api.create_payment_intent(
        {"amount": 1000, "currency": "eur", "metadata": {"marker": "body-marker-7f3a"}},
        idempotency_key="quiet-1",
    )
    await api.payment_intent(intent["id"])
    await api.aclose()
    print("called", intent["metadata"]["marker"])

with StripeSimulator() as sim:
    asyncio.run(main(sim))
"""


@pytest.mark.parametrize("how", ["environment", "attribute"])
def test_the_stripe_package_never_prints_request_or_response_bodies(how, tmp_path):
    """`STRIPE_LOG=debug` (or `stripe.log = "debug"`) makes the stripe package print every
    request and response body to stderr, past the gateway's log allowlist: it stays silent."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "STRIPE_LOG": "debug" if how == "environment" else ""}
    done = subprocess.run(
        [sys.executable, "-c", _STRIPE_CALL, how],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "called body-marker-7f3a"
    assert "body-marker-7f3a" not in done.stderr
    assert "Stripe" not in done.stderr, done.stderr[-2000:]
