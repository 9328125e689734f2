"""The legal pages: Markdown an operator may replace (no raw HTML gets through), filled with
this installation's facts; the cookie policy generated from the configuration."""

from sqlalchemy import select
from tests.web.helpers import new_email

from reapi_server.models import Consent


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
    assert "<h1>Privacy policy</h1>" in text and "Version 2026-12-06" in text
    # The version moved with the credit history row (and the policy says so at its end).
    assert "credit balance and its history" in text
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
