"""`reapi-server`: run the gateway and administer its accounts, keys and credits.

Every command takes `--data-dir` (or REAPI_DATA_DIR) and `--database-url` (or REAPI_DATABASE_URL)
so that it acts on the same state as the running server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from reapi import ReapiError

from . import admin
from .config import CONFIG_ENV, Settings, describe_settings_error
from .demo import run_demo
from .errors import GatewayError
from .extras import MissingExtraError
from .serving import run_server

__all__ = ["app", "main"]

app = typer.Typer(
    help="reapi gateway server: OpenAI-compatible /v1 with API keys, credits and failover.",
    no_args_is_help=True,
    add_completion=False,
    # Off explicitly (typer before 0.23 showed them): a crash would print keys given as options.
    pretty_exceptions_show_locals=False,
)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Grant credits.", no_args_is_help=True)
outputs_app = typer.Typer(help="Delete stored outputs, run retention.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
app.add_typer(outputs_app, name="outputs")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="REAPI_DATA_DIR", help="State directory [./reapi-data]."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="REAPI_DATABASE_URL",
        help="SQLAlchemy URL; default: a SQLite file in the data dir.",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", envvar=CONFIG_ENV, help="A TOML file of settings (env wins)."),
]
Email = Annotated[str, typer.Option("--email", help="The account's email.")]


def _settings(
    data_dir: Path | None, database_url: str | None, config: Path | None = None, **more: Any
) -> Settings:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    try:
        settings = Settings()
    except ValidationError as error:
        _exit_with(describe_settings_error(error))
    except tomllib.TOMLDecodeError as error:
        _exit_with(f"the config file is not valid TOML ({error})")
    except OSError as error:  # the config file named cannot be read
        reason = error.strerror or type(error).__name__
        _exit_with(f"the config file {error.filename or ''} cannot be read ({reason})")
    return settings.with_overrides(data_dir=data_dir, database_url=database_url, **more)


def _exit_with(message: str) -> NoReturn:
    """One line on stderr and exit status 1: a configuration mistake needs no traceback."""
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except (GatewayError, ReapiError) as error:
        message = error.message
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8000].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [1].")] = None,
) -> None:
    """Run the gateway (uvicorn with uvloop and httptools)."""
    settings = _settings(data_dir, database_url, config, host=host, port=port, workers=workers)
    run_server(settings)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema."""
    settings = _settings(data_dir, database_url)
    _run(admin.migrate(settings))
    typer.echo("database is up to date")


@accounts_app.command("create")
def accounts_create(
    email: Email,
    credits: Annotated[int, typer.Option("--credits", min=0, help="Initial credits.")] = 0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account (optionally with credits)."""
    view = _run(admin.add_account(_settings(data_dir, database_url), email, credits))
    typer.echo(f"account {view.id} {view.email} balance={view.balance}")


@accounts_app.command("show")
def accounts_show(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show an account's balance."""
    view = _run(admin.show_account(_settings(data_dir, database_url), email))
    typer.echo(f"account {view.id} {view.email} balance={view.balance} reserved={view.reserved}")


@keys_app.command("create")
def keys_create(
    email: Email,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue an API key. It is printed once: only its hash is kept."""
    issued = _run(admin.new_key(_settings(data_dir, database_url), email, name))
    typer.echo(f"key id: {issued.key_id}")
    typer.echo(f"REAPI_API_KEY={issued.plaintext}")
    typer.echo("This key is shown once; store it now.", err=True)


@keys_app.command("list")
def keys_list(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List an account's keys (id, last four characters, state, name, default webhook)."""
    for key in _run(admin.list_keys(_settings(data_dir, database_url), email)):
        line = f"{key.id}  ...{key.last4}  {'revoked' if key.revoked else 'active'}  {key.name}"
        if key.webhook_url:
            disabled = " (disabled: the receiver answered 410 Gone)" if key.webhook_disabled else ""
            line += f"  webhook={key.webhook_url}{disabled}"
        typer.echo(line)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id (key_...) or the key itself.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key: refused at once here, within two seconds by running servers."""
    if not _run(admin.revoke(_settings(data_dir, database_url), key)):
        typer.secho("error: no active key matches", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo("revoked")


KeyId = Annotated[str, typer.Argument(help="The key id (key_...).")]


@keys_app.command("set-webhook")
def keys_set_webhook(
    key_id: KeyId,
    url: Annotated[
        str | None, typer.Option("--url", help="http(s) URL on a public address.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the default.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Set a key's default webhook URL: its video jobs announce their end there (signed with
    the key's webhook secret) unless a request names another `webhook_url`."""
    if (url is not None) == clear:
        _exit_with("give either --url URL or --clear")
    settings = _settings(data_dir, database_url, config)
    if not _run(admin.set_webhook(settings, key_id, url)):
        _exit_with("no such key")
    typer.echo(f"{key_id} webhook={url}" if url else f"{key_id} webhook cleared")


@keys_app.command("webhook-secret")
def keys_webhook_secret(
    key_id: KeyId,
    rotate: Annotated[
        bool,
        typer.Option("--rotate", help="Make a new secret (the old one signs beside it a day)."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Print the secret (whsec_...) that signs a key's webhooks; give it to the receiver, which
    verifies with reapi.webhooks.verify or any Standard Webhooks library."""
    secret = _run(
        admin.webhook_secret(_settings(data_dir, database_url, config), key_id, rotate=rotate)
    )
    if secret is None:
        _exit_with("no such key")
    typer.echo(secret)


@credits_app.command("grant")
def credits_grant(
    email: Email,
    credits: Annotated[int, typer.Option("--credits", min=1, help="Credits to add.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add credits to an account (a ledger row)."""
    view = _run(admin.grant_credits(_settings(data_dir, database_url), email, credits))
    typer.echo(f"account {view.email} balance={view.balance}")


@outputs_app.command("delete")
def outputs_delete(
    task: Annotated[
        str, typer.Option("--task", help="An image request id (x-request-id) or a video id.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete a task's stored outputs now: rows, then objects (any account)."""
    result = _run(admin.delete_outputs(_settings(data_dir, database_url, config), task))
    typer.echo(f"deleted {result.rows} outputs of {task}")
    if not result.complete:
        typer.secho(
            "error: storage did not confirm every deletion; the rest is queued and the "
            "retention job retries it",
            err=True,
            fg="red",
        )
        raise typer.Exit(1)


@outputs_app.command("purge")
def outputs_purge(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None
) -> None:
    """Run the retention job once: delete what is older than retention_days."""
    report = _run(admin.purge_expired(_settings(data_dir, database_url, config)))
    typer.echo(
        f"deleted {report.outputs} outputs, {report.usage_rows} usage rows, "
        f"{report.video_jobs} video jobs; {report.objects} objects removed from storage"
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    simulator_port: Annotated[
        int, typer.Option(help="First port of the provider simulators [0: any free ports].")
    ] = 0,
) -> None:
    """The gateway with the built-in provider simulators: nothing leaves this machine."""
    run_demo(_settings(data_dir, database_url, port=port), simulator_port=simulator_port)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
    except MissingExtraError as error:  # e.g. storage_backend = "s3" without boto3
        typer.secho(f"error: {error}", err=True, fg="red")
        sys.exit(1)


if __name__ == "__main__":
    main()
