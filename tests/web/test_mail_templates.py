"""The messages themselves: a plain-text part and an HTML part for each, drawn with tables and
inline styles (what mail clients render alike), saying what a person needs to know."""

from __future__ import annotations

import re
from datetime import date

import pytest

from reapi_server.email.compose import MailComposer
from reapi_server.email.markdown import render_markdown
from reapi_server.links import Links

TOKEN = "Zk3vR0sPq8wXy2Lm9NtB4cD6eF1gH5jK7lM0nO2pQ4r"


@pytest.fixture
def composer() -> MailComposer:
    return MailComposer(
        site_name="Acme <AI>", links=Links("https://acme.test"), contact="privacy@acme.test"
    )


def _every(composer: MailComposer):
    body = render_markdown("Hello **world** <script>alert(1)</script>")
    return [
        composer.welcome("ada@example.com", TOKEN),
        composer.welcome("ada@example.com", None),
        composer.verify_email("ada@example.com", TOKEN),
        composer.reset_password("ada@example.com", TOKEN),
        composer.password_changed("ada@example.com", 1_800_000_000),
        composer.change_email("new@example.com", TOKEN, old="ada@example.com"),
        composer.email_change_requested("ada@example.com", 1_800_000_000, new="new@example.com"),
        composer.email_changed("ada@example.com", 1_800_000_000, new="new@example.com"),
        composer.new_device_sign_in(
            "ada@example.com", 1_800_000_000, device="Firefox on Linux", address="192.0.2.0/24"
        ),
        composer.two_factor_changed("ada@example.com", 1_800_000_000, on=True),
        composer.two_factor_changed("ada@example.com", 1_800_000_000, on=False),
        composer.account_deleted("ada@example.com", 1_800_000_000),
        composer.policy_change(
            "ada@example.com", subject="S", effective=date(2030, 1, 5), body=body
        ),
        composer.newsletter("ada@example.com", subject="N", body=body, unsubscribe="user_1.t"),
    ]


def test_every_message_has_both_parts_on_the_table_layout(composer):
    for message in _every(composer):
        assert message.text.strip() and message.html, message
        assert "{{" not in message.text and "{{" not in message.html
        assert '<table role="presentation"' in message.html
        assert "<script" not in message.html  # (the text part is plain text: harmless)
        assert "Acme &lt;AI&gt;" in message.html  # escaped in HTML, as is in text
        assert "Acme <AI>" in message.text
        # No stylesheet is needed to read it: every text block carries its own style.
        unstyled = re.findall(r"<(?:p|h1|h2|td|ul|li|a)\b(?![^>]*style=)[^>]*>", message.html)
        assert unstyled == [], (message, unstyled)
        assert re.search(r"<h1 style=", message.html) or message.template in (
            "newsletter",
            "policy_change",
        )


def test_links_in_both_parts(composer):
    welcome = composer.welcome("ada@example.com", TOKEN)
    link = f"https://acme.test/verify?token={TOKEN}"
    assert link in welcome.text and f'href="{link}"' in welcome.html
    assert welcome.subject.startswith("Confirm your email address")
    oauth = composer.welcome("ada@example.com", None)
    assert oauth.subject == "Welcome to Acme <AI>" and "/verify" not in oauth.text
    reset = composer.reset_password("ada@example.com", TOKEN)
    assert f"https://acme.test/reset/confirm?token={TOKEN}" in reset.text


def test_every_html_message_has_a_preview_line(composer):
    for message in _every(composer):
        preview = re.search(r'<div style="display:none;[^>]*>(.*?)&#8199;', message.html)
        assert preview and preview.group(1).strip(), message


def test_the_email_changed_notice_names_who_to_tell(composer):
    message = composer.email_changed("ada@example.com", 1_800_000_000, new="new@example.com")
    for part in (message.text, message.html):
        assert "new@example.com" in part and "privacy@acme.test" in part


def test_the_deletion_confirmation_says_what_happened_and_what_stays(composer):
    message = composer.account_deleted("ada@example.com", 1_800_000_000)
    assert message.subject == "Your Acme <AI> account was deleted"
    assert message.kind == "transactional" and not message.headers
    for part in (message.text, message.html):
        assert "ada@example.com" in part and "2027-01-15 08:00 UTC" in part
        assert "API keys no longer work" in part and "7 years" in part
        assert "privacy@acme.test" in part


def test_a_policy_notice_names_its_date_and_the_policies(composer):
    body = render_markdown("We keep usage **60 days**.")
    message = composer.policy_change(
        "ada@example.com", subject="Changes", effective=date(2030, 1, 5), body=body
    )
    assert "5 January 2030" in message.text and "5 January 2030" in message.html
    assert "https://acme.test/legal/privacy" in message.text
    assert "<strong>60 days</strong>" in message.html and "**60 days**" in message.text
    assert "every account holder" in message.text


def test_markdown_raw_html_is_text_and_code_keeps_its_box():
    body = render_markdown("<b>x</b>\n\n```\na < b\n```\n\n[l](https://x.test)")
    assert "<b>" not in body.html and "&lt;b&gt;" in body.html
    assert '<pre style="' in body.html and "a &lt; b" in body.html
    assert '<a href="https://x.test" style="' in body.html
