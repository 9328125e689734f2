"""The legal pages: Markdown an operator may replace (no raw HTML gets through), filled with
this installation's facts; the cookie policy generated from the configuration."""

import html
import re

from sqlalchemy import select
from tests.web.helpers import new_email
from tests.web.people import personal_tables

from reapi_server.models import Consent

#: For each table about people, the words of the privacy policy's table saying what it keeps
#: (each must be in the row's "What", and the row must say how long). A table added later
#: fails `test_the_privacy_policy_lists_every_table_about_people` until the policy says so.
POLICY_ROW_FOR = {
    "users": "Your email address",
    "memberships": "Your email address",
    "accounts": "what the account owes and that it is on hold",
    "consents": "acceptance of the terms and this policy",
    "oauth_identities": "your user id there",
    "oauth_requests": "While a sign-in with GitHub or Google is under way",
    "user_tokens": "Links we email you",
    "web_sessions": "the browser's name",
    "backup_codes": "backup codes",
    "known_devices": "for each device you sign in from",
    "api_keys": "the limits you set on a key",
    "balance_alerts": "low-balance thresholds",
    "key_spend_alerts": "each key's spend alert",
    "usage_records": "Usage records",
    "usage_rollups": "their daily sums",
    "credit_ledger": "Your credit balance and its history",
    "credit_holds": "the credit held and charged",
    "promo_redemptions": "promotion codes",
    "stored_outputs": "Generated images and videos",
    "video_jobs": "Video requests",
    "webhook_deliveries": "Webhook deliveries",
    "idempotency_records": "Idempotency-Key",
    "billing_profiles": "automatic top-up settings",
    "top_ups": "each purchase you start",
    "payments": "Payments: amount",
    "refunds": "refunds and disputes",
    "disputes": "refunds and disputes",
    "outbox_messages": "Messages we email you",
    "notice_deliveries": "which policy change notices",
    "auth_throttle": "Failed sign-in counts",
    "audit_log": "Records of what our operators did",
}


async def test_default_policies_say_what_the_software_does(make_gateway, browsers):
    gateway = await make_gateway(
        public_base_url="http://gateway.test",
        retention_days=14,
        operator_name="Example Ltd",
        operator_contact="privacy@example.com",
    )
    browser = browsers(gateway)
    privacy = await browser.get("/legal/privacy")
    assert privacy.status_code == 200
    text = privacy.text
    assert "<h1>Privacy policy</h1>" in text and "Version 2026-12-07" in text
    # The version moved with the rows added (and the policy says so at its end).
    assert "credit balance and its history" in text
    assert "2026-12-07: the table lists everything else we keep" in text
    assert "2026-12-06: the table says how long we keep your credit balance" in text
    assert "Example Ltd" in text and "privacy@example.com" in text
    assert "14 days" in text and "30 days" not in text.split("sessions")[0]
    assert "7 years" in text and "16" in text
    assert "prompts" in text and "never written" in text
    assert "<table>" in text  # the Markdown table rendered
    assert "{{" not in text
    # Subprocessors: the providers this gateway can call.
    assert "primary (primary.test)" in text and "backup (backup.test)" in text
    terms = await browser.get("/legal/terms")
    assert terms.status_code == 200 and "Terms of service" in terms.text
    assert "Example Ltd" in terms.text


async def test_an_operator_replaces_a_policy_and_sign_up_records_its_version(
    make_gateway, browsers, tmp_path
):
    legal = tmp_path / "legal"
    legal.mkdir()
    (legal / "privacy.md").write_text(
        "version: 2027-01-31\ntitle: Our privacy notice\n---\n"
        "We keep **little**. <script>alert(1)</script> <b>raw</b>\n\n"
        "[click](javascript:alert(1)) {{site_name}} {{unknown_fact}}\n"
    )
    gateway = await make_gateway(public_base_url="http://gateway.test", legal_dir=legal)
    browser = browsers(gateway)
    page = await browser.get("/legal/privacy")
    assert "<h1>Our privacy notice</h1>" in page.text and "Version 2027-01-31" in page.text
    assert "<strong>little</strong>" in page.text
    assert "<script>" not in page.text and "<b>raw</b>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert 'href="javascript' not in page.text
    assert "reapi {{unknown_fact}}" in page.text
    # The terms were not replaced: the packaged ones are served.
    assert "Terms of service" in (await browser.get("/legal/terms")).text
    await browser.sign_up(new_email())
    async with gateway.rt.db.read() as session:
        versions = dict((await session.execute(select(Consent.kind, Consent.policy_version))).all())
    assert versions == {"age_16_plus": "1", "privacy": "2027-01-31", "terms": "2026-12-05"}


async def test_the_cookie_policy_lists_what_this_installation_sets(make_gateway, browsers):
    plain = await make_gateway(public_base_url="http://gateway.test", session_max_days=14)
    page = await browsers(plain).get("/legal/cookies")
    assert "<code>reapi_session</code>" in page.text and "<code>reapi_csrf</code>" in page.text
    assert "14 days" in page.text and "__Host-" not in page.text
    assert "advertising" in page.text
    secure = await make_gateway(public_base_url="https://reapi.example")
    page = await browsers(secure, "https://reapi.example").get("/legal/cookies")
    assert "<code>__Host-reapi_session</code>" in page.text
    assert "<code>__Host-reapi_csrf</code>" in page.text
    assert page.text.count("<code>") == 2


async def test_object_storage_is_a_subprocessor_when_configured(tmp_path):
    from reapi_server.config import Settings
    from reapi_server.legal.subprocessors import as_markdown, subprocessors

    r2 = Settings(
        data_dir=tmp_path,
        storage_backend="s3",
        s3_bucket="outputs",
        s3_endpoint_url="https://abc.r2.cloudflarestorage.com",
    )
    listed = as_markdown(subprocessors(r2, {"openai": "https://api.openai.com/v1"}))
    assert "**openai (api.openai.com)**" in listed and "**Cloudflare R2**" in listed
    local = Settings(data_dir=tmp_path)
    assert "R2" not in as_markdown(subprocessors(local, {}))


async def test_a_database_or_redis_on_another_host_is_a_subprocessor(tmp_path):
    """A hosted PostgreSQL holds everything the policy lists; one on this machine (loopback,
    a Unix socket) is the operator's own, as SQLite in the data dir is."""
    from reapi_server.config import Settings
    from reapi_server.legal.subprocessors import as_markdown, subprocessors

    hosted = Settings(
        data_dir=tmp_path,
        database_url="postgres://app:s3cret@db.hosting.example:5432/reapi",
        redis_url="rediss://:p4ss@cache.hosting.example:6380/0",
    )
    listed = as_markdown(subprocessors(hosted, {}))
    assert "**PostgreSQL database (db.hosting.example)**" in listed
    assert "**Redis (cache.hosting.example)**" in listed
    assert "s3cret" not in listed and "p4ss" not in listed and "app@" not in listed
    for database, redis in (
        ("postgresql+asyncpg://app@localhost/reapi", "redis://127.0.0.1:6379/0"),
        ("postgresql+asyncpg://app@[::1]:5432/reapi", "unix:///run/redis.sock"),
        ("postgresql+asyncpg://app@/reapi?host=/run/postgresql", None),
        (None, None),  # SQLite in the data dir
    ):
        own = Settings(data_dir=tmp_path, database_url=database, redis_url=redis)
        listed = as_markdown(subprocessors(own, {}))
        assert "PostgreSQL" not in listed and "Redis" not in listed, (database, redis)


async def test_resend_is_a_subprocessor_when_mail_goes_through_it(tmp_path):
    from reapi_server.config import Settings
    from reapi_server.legal.subprocessors import as_markdown, subprocessors

    resend = Settings(
        data_dir=tmp_path,
        email_backend="resend",
        email_from="Acme <no-reply@acme.test>",
        resend_api_key="re_1",
        public_base_url="https://acme.test",
    )
    listed = as_markdown(subprocessors(resend, {}))
    assert "**Resend (api.resend.com)**" in listed and "email" in listed
    assert "Resend" not in as_markdown(subprocessors(Settings(data_dir=tmp_path), {}))


async def test_the_privacy_policy_covers_the_newsletter_and_policy_notices(web, browsers):
    page = (await browsers(web).get("/legal/privacy")).text
    assert "newsletter" in page and "policy change notices" in page
    assert "We email every account holder before a change to this policy takes effect" in page


def _policy_rows(page: str) -> list[tuple[str, str]]:
    """(what, how long) of each row of the policy's table, as text."""
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        if cells:
            rows.append((cells[0], cells[-1]))
    return rows


async def test_the_privacy_policy_lists_every_table_about_people(make_gateway, browsers):
    """Every table that holds something about a person has its row in the policy, saying how
    long; the periods quoted are this installation's settings."""
    gateway = await make_gateway(
        retention_days=20,
        webhook_retention_days=5,
        idempotency_ttl_seconds=12 * 3600,
        audit_retention_days=400,
    )
    rows = _policy_rows((await browsers(gateway).get("/legal/privacy")).text)
    tables = {t.name for t in personal_tables()}
    assert tables == set(POLICY_ROW_FOR), "say in the policy what a new table keeps"
    for table, words in POLICY_ROW_FOR.items():
        found = [(what, how_long) for what, how_long in rows if words in what]
        assert found, f"{table}: no row of the policy says {words!r}"
        assert all(how_long.strip() for _, how_long in found)
    periods = {what.split(":")[0]: how_long for what, how_long in rows}
    assert periods["Webhook deliveries"] == "5 days"
    assert periods["Video requests"].startswith("20 days after it was made")
    assert periods["Records of what our operators did about your account"].startswith("400 days.")
    assert any(how_long == "12 hours" for what, how_long in rows if "Idempotency-Key" in what)
    # A revoked key goes with the usage that names it (`retention.service`).
    assert "stays listed as revoked for 20 days" in periods["Your API keys"]
    sessions = next(what for what, _ in rows if what.startswith("Your signed-in sessions"))
    assert "never the full User-Agent" in sessions


async def test_webhook_deliveries_are_quoted_at_the_shorter_retention(make_gateway, browsers):
    gateway = await make_gateway(retention_days=3, webhook_retention_days=7)
    rows = _policy_rows((await browsers(gateway).get("/legal/privacy")).text)
    assert ("Webhook deliveries", "3 days") in [(w.split(":")[0], h) for w, h in rows]
