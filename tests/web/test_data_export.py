"""Settings → Data → "Download my data" and `reapi-server users export`: every table's rows
about the person, nobody else's, never a secret; CSV files a spreadsheet cannot turn into
formulas (SQLite and PostgreSQL)."""

import asyncio
import csv
import io
import json

import pytest
from sqlalchemy import select
from tests.web.conftest import BASE
from tests.web.people import (
    NOT_PERSONAL,
    count_about,
    personal_tables,
    seed_person,
    throttle_key_of,
)
from typer.testing import CliRunner

from reapi_server.accounts.export import SECTIONS, to_csv
from reapi_server.cli import app as cli_app
from reapi_server.models import ApiKey, BackupCode, Base, OAuthRequest, User, WebSession


async def test_export_holds_every_table_about_the_person_and_nothing_of_anyone_else(
    people_web, browsers, providers
):
    alice = await seed_person(people_web, browsers, providers)
    bob = await seed_person(people_web, browsers, providers)

    response = await alice.browser.get("/settings/data/export.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith('.json"')
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert document["format"] == "reapi-export/1" and document["user_id"] == alice.user_id

    rt, key = people_web.rt, throttle_key_of(people_web.rt)
    async with rt.db.read() as session:
        for table in personal_tables():
            sections = [s for s in SECTIONS if table.name in s.tables]
            assert sections, (
                f"table {table.name} is in no export section: add one to "
                "accounts/export/sections.py, or list it in NOT_PERSONAL (tests/web/people.py)"
            )
            expected = await count_about(session, table, alice, key)
            assert expected > 0, f"seed_person makes no {table.name} row: extend it"
            for section in sections:
                assert len(document[section.name]) == expected, (section.name, table.name)
    assert set(NOT_PERSONAL) < {t.name for t in Base.metadata.sorted_tables}

    text = response.text
    for identifier in bob.identifiers:
        assert identifier not in text, identifier
    for identifier in alice.identifiers:
        assert identifier in text, identifier


async def test_the_export_never_holds_a_secret(people_web, browsers, providers):
    person = await seed_person(people_web, browsers, providers)
    text = (await person.browser.get("/settings/data/export.json")).text
    async with people_web.rt.db.read() as session:
        user = await session.get(User, person.user_id)
        key = await session.get(ApiKey, person.key_id)
        web_session = (
            await session.execute(
                WebSession.__table__.select().where(WebSession.user_id == person.user_id)
            )
        ).first()
        codes = (await session.execute(select(BackupCode.code_hash))).scalars().all()
        requests = (
            await session.execute(select(OAuthRequest).where(OAuthRequest.user_id == user.id))
        ).scalars()
        under_way = [
            value
            for r in requests
            for value in (r.key_hash, r.browser_hash, r.code_verifier, r.nonce)
            if value
        ]
    assert codes and under_way and user.totp_secret
    hidden = (user.password_hash, key.key_hash, person.key, web_session.token_hash)
    hidden += (user.totp_secret, person.totp_secret, *person.backup_codes, *codes, *under_way)
    for secret in hidden:
        assert secret not in text
    assert person.browser.cookie("reapi_session") not in text
    document = json.loads(text)
    [two_factor] = document["two_factor"]
    assert two_factor["enabled"] is True and two_factor["backup_codes_left"] == 10
    assert two_factor["enabled_at"] is not None
    assert document["sign_in_methods"][0]["provider"] == "github"
    assert document["sign_in_methods"][0]["provider_user_id"] == person.github_id
    assert document["sign_in_methods"][0]["email_at_link_time"] == person.email
    assert [r["purpose"] for r in document["provider_sign_ins"]] == ["link"]
    assert document["notification_settings"][0]["newsletter"] is True
    outputs = json.loads(text)["outputs"]
    assert {o["url"] for o in outputs} >= set(person.image_urls)
    # What the policy says is kept is given: the video's state as the webhook sent it, and the
    # answer an Idempotency-Key replays (its output's file id; the key itself is a keyed hash).
    [delivery] = document["webhook_deliveries"]
    assert delivery["video_as_sent"] == {
        "id": person.video_id,
        "object": "video",
        "status": "completed",
    }
    [record] = document["idempotency_records"]
    assert record["status_code"] == 200 and record["answer"]["files"]
    assert all(any(f in url for url in person.image_urls) for f in record["answer"]["files"])
    assert all(o["expires_at"] > o["created_at"] for o in outputs)
    keys = json.loads(text)["api_keys"]
    assert keys[0]["last4"] == person.key[-4:] and keys[0]["last_used_at"] is not None
    # The key's limits and its spend in the current period (the image and the video).
    assert (keys[0]["kind"], keys[0]["spend_limit"], keys[0]["spend_period"]) == (
        "model",
        100_000,
        "weekly",
    )
    assert keys[0]["spent_in_period"] > 0 and keys[0]["models"] is None
    assert document["accounts"][0]["disabled_at"] is None
    # What an operator did to the account, without saying which admin.
    [action] = document["operator_actions"]
    assert (action["action"], action["by"]) == ("credits.adjust", "operator (cli)")
    assert action["detail"] == {"amount": 50, "reason": "goodwill"}


async def test_export_needs_a_session(people_web, browsers, providers):
    for path in ("/settings/data/export.json", "/settings/data/usage.csv", "/settings/delete"):
        response = await browsers(people_web).get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    person = await seed_person(people_web, browsers, providers)
    assert (await person.browser.get("/settings/data/ledger.csv")).status_code == 404


async def test_usage_and_payments_as_csv_without_formulas(people_web, browsers, providers):
    person = await seed_person(
        people_web, browsers, providers, product='=HYPERLINK("http://evil","x")'
    )
    await seed_person(people_web, browsers, providers)  # someone else's rows must not show
    usage = await person.browser.get("/settings/data/usage.csv")
    assert usage.status_code == 200 and usage.headers["content-type"].startswith("text/csv")
    assert usage.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(usage.text)))
    assert {r["id"] for r in rows} == {person.image_request_id, _video_request(rows)}
    assert {r["endpoint"] for r in rows} == {"images.generations", "videos.create"}

    paid = await person.browser.get("/settings/data/payments.csv")
    (payment,) = list(csv.DictReader(io.StringIO(paid.text)))
    # In the currency's unit, as the billing history's CSV has it: "900" would read as 900 EUR.
    assert payment["id"] == person.payment_id
    assert (payment["amount"], payment["currency"]) == ("9.00", "EUR")
    assert (await person.browser.get("/settings/data/export.json")).json()["payments"][0][
        "amount"
    ] == 900  # the JSON keeps Stripe's minor units, as documented
    assert payment["product"] == '\'=HYPERLINK("http://evil","x")'


def _video_request(rows):
    return next(r["id"] for r in rows if r["endpoint"] == "videos.create")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_quoted(start):
    body = to_csv([{"text": f"{start}1+2", "number": -5, "none": None}], ["text", "number", "none"])
    (row,) = list(csv.reader(io.StringIO(body.decode(), newline="")))[1:]
    assert row == [f"'{start}1+2", "-5", ""]


async def test_the_cli_exports_the_same_document(people_web, browsers, providers, tmp_path):
    person = await seed_person(people_web, browsers, providers)
    from_page = (await person.browser.get("/settings/data/export.json")).json()
    output = tmp_path / "export.json"
    output.write_text("an earlier export, readable by all")  # overwritten, and made private
    output.chmod(0o644)
    args = ["users", "export", "--email", person.email, "--output", str(output)]
    args += ["--data-dir", str(people_web.data_dir)]
    if people_web.rt.settings.database_url:
        args += ["--database-url", people_web.rt.settings.database_url]
    # The operator's CLI runs with the server's settings (its address, its secret).
    runner = CliRunner(env={"REAPI_PUBLIC_BASE_URL": BASE, "REAPI_SECRET_KEY": "test-secret"})
    result = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert output.stat().st_mode & 0o777 == 0o600
    from_cli = json.loads(output.read_bytes())
    for name in ("exported_at", "sessions"):  # the CLI's clock; the page's visit touched one
        from_cli.pop(name), from_page.pop(name)
    assert from_cli == from_page
    missing = await asyncio.to_thread(
        runner.invoke, cli_app, [*args[:2], "--email", "nobody@example.com", *args[4:]]
    )
    assert missing.exit_code == 1 and "no user" in missing.output


#: Columns of exported tables that the export holds under another name.
EXPORTED_AS = {
    ("users", "id"): "user_id",
    ("users", "totp_enabled_at"): "enabled_at",
    ("oauth_identities", "subject"): "provider_user_id",
    ("oauth_identities", "email"): "email_at_link_time",
    ("oauth_identities", "created_at"): "linked_at",
    ("user_tokens", "email"): "sent_to",
    ("auth_throttle", "key"): "rule",
    ("auth_throttle", "window_started_at"): "window_started_at",
    ("outbox_messages", "to_address"): "to",
    ("outbox_messages", "template"): "message",
    ("notice_deliveries", "created_at"): "queued_at",
    ("api_keys", "period_spend"): "spent_in_period",
    ("api_keys", "model_allowlist"): "models",
    ("consents", "accepted_at"): "accepted_at",
    ("stored_outputs", "storage_key"): "url",
    ("web_sessions", "user_agent"): "browser",  # the column's old name; it holds the name
    ("billing_profiles", "card_label"): "saved_card",
    ("billing_profiles", "auto_enabled"): "auto_top_up",
    ("billing_profiles", "auto_threshold"): "auto_top_up_threshold",
    ("billing_profiles", "auto_pack_id"): "auto_top_up_pack",
    ("billing_profiles", "auto_monthly_cap"): "auto_top_up_monthly_cap",
    ("billing_profiles", "auto_paused_reason"): "auto_top_up_paused_reason",
    ("billing_profiles", "auto_paused_at"): "auto_top_up_paused_at",
    ("audit_log", "via"): "by",
    ("audit_log", "created_at"): "at",
    ("promo_redemptions", "created_at"): "at",
    ("balance_alerts", "created_at"): "set_at",
    ("balance_alerts", "fired_at"): "last_mailed_at",
    ("key_spend_alerts", "created_at"): "set_at",
    ("key_spend_alerts", "fired_at"): "last_mailed_at",
    ("webhook_deliveries", "video_object"): "video_as_sent",
    ("idempotency_records", "response"): "answer",
}
#: Columns of exported tables the export leaves out, and why: secrets, the machinery's own
#: bookkeeping, copies of what the export already says. A value the person gave, or one that
#: says something about them (a setting, a debt, where their webhooks go), is never here.
WITHHELD = {
    ("users", "password_hash"): "a secret",
    ("users", "totp_secret"): "a secret",
    ("users", "totp_last_step"): "the last code step used: replay protection",
    ("backup_codes", "code_hash"): "a secret",
    ("backup_codes", "user_id"): "the person's id, given once at the top",
    ("oauth_requests", "key_hash"): "a secret",
    ("oauth_requests", "browser_hash"): "a secret",
    ("oauth_requests", "code_verifier"): "a secret",
    ("oauth_requests", "nonce"): "a secret",
    ("web_sessions", "token_hash"): "a secret",
    ("user_tokens", "token_hash"): "a secret",
    ("outbox_messages", "text_body"): "dropped once sent",
    ("outbox_messages", "html_body"): "dropped once sent",
    ("outbox_messages", "headers"): "dropped once sent",
    ("api_keys", "key_hash"): "a secret",
    ("api_keys", "webhook_salt"): "makes the signing secret",
    ("api_keys", "webhook_previous_salt"): "makes the signing secret",
    ("idempotency_records", "key_hash"): "a keyed hash",
    ("idempotency_records", "fingerprint"): "a keyed hash",
    ("audit_log", "actor_user_id"): "which admin acted is the operator's",
    ("outbox_messages", "kind"): "transactional or newsletter: the message's name says it",
    ("outbox_messages", "last_error"): "the mail backend's error code",
    ("credit_holds", "expires_at"): "when the sweeper would release it",
    ("credit_holds", "period_start"): "the key's spend period the hold counts in",
    ("video_jobs", "request_id"): "the usage row's id (in usage)",
    ("video_jobs", "hold_id"): "the hold's id (in credit_holds, by request_id)",
}


async def test_every_column_about_the_person_is_exported_or_withheld_for_a_reason(
    people_web, browsers, providers
):
    """Row by row is not enough: a column that says something about the person (their time
    zone, a debt, a key's webhook address) left out of its section is data held and not
    given. Each column of an exported table is in its section's rows (by its name or the one
    in EXPORTED_AS), withheld for a reason (WITHHELD), or internal to the machinery."""
    person = await seed_person(people_web, browsers, providers)
    document = (await person.browser.get("/settings/data/export.json")).json()
    internal = {
        "account_id",
        "user_id",
        "lease_owner",
        "lease_expires_at",
        "next_poll_at",
        "next_attempt_at",
        "poll_failures",
        "not_before",
        "alive_until",
        "checked_at",
        "upstream_model",
        "upstream_task_id",
        "upstream_expires_at",
        "progress",
        "attempts",
        "video_file_id",
        "thumbnail_file_id",
        "active_videos",
        "deleted_at",
        "detached_at",
        "awaiting_second_factor",
        "slot",
        "requests",
        "credits",
        "top_up_id",
        "notice_id",
        "outbox_id",
        "code_id",
        "fired_period",
        "payment_method_id",
        "webhook_rotated_at",
        "email_verified",
        "next_url",
        "subject",
        "email",
        "key",
        "target_user_id",
        # A row's own id: exported where a person meets it elsewhere (keys, requests,
        # payments, ...); a row number (a consent's, an audit row's) says nothing more.
        "id",
    }
    held: dict[str, set[str]] = {}  # a table in several sections (users): all of them
    for section in SECTIONS:
        for table_name in section.tables:
            held.setdefault(table_name, set()).update(k for r in document[section.name] for k in r)
    missing = [
        f"{table_name}.{column.name}"
        for table_name, keys in held.items()
        for column in Base.metadata.tables[table_name].columns
        if EXPORTED_AS.get((table_name, column.name), column.name) not in keys
        and (table_name, column.name) not in WITHHELD
        and column.name not in internal
    ]
    assert not missing, ", ".join(missing)
