"""The dashboard's Python snippet, copied as it is and run against a live gateway with the
person's key in REAPI_API_KEY, makes an image and writes it to a file: a person who pastes it
sees a result, not a script that ends in silence."""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys

import httpx
from tests.web.helpers import PASSWORD, csrf_of, new_email
from tests.web.live import live_web_server

from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import issue_key
from reapi_server.credits.service import grant
from reapi_server.db import Database
from reapi_server.identity import repository as users


async def _key_with_credits(database_url: str, email: str) -> str:
    db = Database(database_url)
    try:
        async with db.write() as session:
            user = await users.find_user_by_email(session, email)
            account = await account_of(session, user.id)
            await grant(session, account.id, 1_000, 1.0)
            _, issued = await issue_key(session, account.id, now=1.0)
            return issued.plaintext
    finally:
        await db.dispose()


def test_the_python_snippet_runs_as_shown_and_saves_the_image(tmp_path, migrated_template):
    email = new_email()
    with live_web_server(tmp_path / "data", migrated_template) as live:
        with httpx.Client(base_url=live.base_url) as browser:
            token = csrf_of(browser.get("/signup").text)
            signed_up = browser.post(
                "/signup",
                data={
                    "email": email,
                    "password": PASSWORD,
                    "age_16_plus": "yes",
                    "accept_terms": "yes",
                    "csrf_token": token,
                },
            )
            assert signed_up.status_code == 303, signed_up.text
            url = live.runtime.settings.resolved_database_url
            key = asyncio.run(_key_with_credits(url, email))
            page = browser.get("/dashboard").text
        code = re.search(r'<code id="snippet-python">(.*?)</code>', page, re.S)
        assert code, "no Python snippet on the dashboard"
        (tmp_path / "snippet.py").write_text(html.unescape(code.group(1)))
        ran = subprocess.run(
            [sys.executable, "snippet.py"],
            cwd=tmp_path,
            env={**os.environ, "REAPI_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "lighthouse.png").stat().st_size > 0
