"""What a gateway process keeps in memory: modules the hot path never needs are imported only
when used (issue 15: idle RSS). Checked in a fresh interpreter that starts the gateway the way
`reapi-server serve` does: import the command line, migrate (here: find the database at the
newest schema), then build the app."""

import json
import os
import subprocess
import sys
import textwrap

from reapi_server.migrate import alembic_config, head_revisions

#: Loaded by sign-in with a provider, a second factor, or a migration that has work to do.
HEAVY = ("alembic", "mako", "authlib", "joserfc", "cryptography")
#: Loaded with the web half (built by its first request), or by the first mail or policy page.
WEB = ("jinja2", "markdown_it", "segno", "pyotp", "argon2", "httpx2")
#: httpx's command-line client, which httpx imports with itself when they are installed.
HTTPX_CLI = ("rich", "pygments")
#: What only the administration commands use: `reapi-server serve` imports the CLI without it.
ADMIN = (
    "reapi_server.admin",
    "reapi_server.accounts.export",
    "reapi_server.billing.operator",
    "reapi_server.email.notices",
    "reapi_server.promo.service",
    "reapi_server.usage.command",
)
#: The SDK's client side (`reapi.ReAPI` and its resources): the gateway uses the engine.
SDK_CLIENT = ("reapi._client", "reapi._raw_clients", "reapi.resources.images", "tenacity")


def test_the_gateway_starts_without_the_heavy_modules(tmp_path, migrated_template):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "reapi.db").write_bytes(migrated_template.read_bytes())
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        import reapi_server.cli
        from reapi_server.app import create_app
        from reapi_server.config import Settings
        from reapi_server.fleet_secret import resolve_for

        settings = Settings(data_dir={str(data_dir)!r})
        asyncio.run(resolve_for(settings, migrate=True))
        create_app(settings, migrate=False)
        print(json.dumps(sorted(sys.modules)))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "REAPI_METRICS_LISTEN": "off"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    modules = set(json.loads(run.stdout.splitlines()[-1]))
    loaded = {name.split(".")[0] for name in modules}
    assert "reapi_server" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded.isdisjoint(WEB), sorted(loaded & set(WEB))
    assert loaded.isdisjoint(HTTPX_CLI), sorted(loaded & set(HTTPX_CLI))
    assert "httpx" in loaded
    assert modules.isdisjoint(SDK_CLIENT), sorted(modules & set(SDK_CLIENT))
    assert modules.isdisjoint(ADMIN), sorted(modules & set(ADMIN))
    web_pages = sorted(
        m
        for m in modules
        if m.startswith(("reapi_server.web.", "reapi_server.identity.service"))
        and m != "reapi_server.web.mount"
    )
    assert not web_pages, web_pages


def test_the_newest_revisions_are_read_as_alembic_reads_them():
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert head_revisions() == frozenset(heads)
