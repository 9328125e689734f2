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
    assert payment["id"] == person.payment_id and payment["amount"] == "900"
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
