"""`reapi-server`: run the gateway and administer its accounts, keys and credits.

Every command takes `--data-dir` (or REAPI_DATA_DIR) and `--database-url` (or REAPI_DATABASE_URL)
so that it acts on the same state as the running server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from . import admin
from .accounts.export import to_json
from .config import CONFIG_ENV, Settings
from .demo import run_demo
from .errors import GatewayError
from .serving import run_server

__all__ = ["app", "main"]

app = typer.Typer(
    help="reapi gateway server: OpenAI-compatible /v1 with API keys, credits and failover.",
    no_args_is_help=True,
    add_completion=False,
)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Grant credits.", no_args_is_help=True)
outputs_app = typer.Typer(help="Delete stored outputs, run retention.", no_args_is_help=True)
users_app = typer.Typer(
    help="People who sign in: list, show, export, delete.", no_args_is_help=True
)
app.add_typer(accounts_app, name="accounts")
app.add_typer(users_app, name="users")
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
    return Settings().with_overrides(data_dir=data_dir, database_url=database_url, **more)


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except GatewayError as error:
        typer.secho(f"error: {error.message}", err=True, fg="red")
        raise typer.Exit(1) from None


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


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


@users_app.command("list")
def users_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List users: id, email, verified or not, created, accounts owned."""
    for user in _run(admin.list_users(_settings(data_dir, database_url))):
        state = "verified" if user.verified else "unverified"
        accounts = ",".join(user.account_ids) or "-"
        typer.echo(f"{user.id}  {user.email}  {state}  {_when(user.created_at)}  {accounts}")


@users_app.command("show")
def users_show(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show a user: verification, password set, sessions, consents, accounts."""
    user = _run(admin.show_user(_settings(data_dir, database_url), email))
    typer.echo(f"user {user.id} {user.email}")
    typer.echo(f"  email: {'verified' if user.verified else 'not verified'}")
    typer.echo(f"  password: {'set' if user.has_password else 'not set'}")
    typer.echo(f"  created: {_when(user.created_at)}")
    typer.echo(f"  accounts: {', '.join(user.account_ids) or '-'}")
    typer.echo(f"  sessions: {user.sessions}")
    for kind, version, accepted_at in user.consents:
        typer.echo(f"  consent: {kind} (version {version}) at {_when(accepted_at)}")


@users_app.command("delete")
def users_delete(
    email: Email,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete a user and their accounts' data, as "Delete account" in Settings does: keys
    revoked, sessions ended, video jobs cancelled, outputs and usage deleted, payment records
    kept (detached) for 7 years; a confirmation mail goes to their address."""
    if not yes:
        typer.confirm(f"Delete the user {email} and all their data?", abort=True)
    deletion = _run(admin.remove_user(_settings(data_dir, database_url, config), email))
    deleted = deletion.user
    typer.echo(
        f"deleted user {deleted.user_id}: {deleted.keys_revoked} keys revoked, "
        f"{deleted.sessions_ended} sessions ended, {deleted.payments_kept} payment records "
        "kept (detached)"
    )
    for purged in deletion.accounts:
        state = "deleted" if purged.removed else "closed; the rest goes once its requests end"
        typer.echo(
            f"account {purged.account_id} {state}: {purged.video_jobs} video jobs, "
            f"{purged.usage_rows} usage rows, {purged.objects} stored outputs"
        )


@users_app.command("export")
def users_export(
    email: Email,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the JSON here [standard output].")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Export a user's data: the JSON document "Download my data" in Settings gives."""
    document = _run(admin.export_user(_settings(data_dir, database_url, config), email))
    body = to_json(document)
    if output is None:
        sys.stdout.buffer.write(body)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # personal data
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    typer.echo(f"wrote {output}", err=True)


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
    """List an account's keys (id, name, last four characters)."""
    for key_id, name, last4, revoked in _run(
        admin.list_keys(_settings(data_dir, database_url), email)
    ):
        typer.echo(f"{key_id}  ...{last4}  {'revoked' if revoked else 'active'}  {name}")


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
    """Run the retention job once: delete what is older than retention_days (payment records:
    payment_retention_days)."""
    report = _run(admin.purge_expired(_settings(data_dir, database_url, config)))
    typer.echo(
        f"deleted {report.outputs} outputs, {report.usage_rows} usage rows, "
        f"{report.video_jobs} video jobs, {report.payments} payment records past their 7 years; "
        f"{report.objects} objects removed from storage"
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


if __name__ == "__main__":
    main()
