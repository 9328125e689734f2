"""`reapi-server`: run the gateway and administer its accounts, keys and credits.

Every command takes `--data-dir` (or REAPI_DATA_DIR) and `--database-url` (or REAPI_DATABASE_URL)
so that it acts on the same state as the running server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import tomllib
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from reapi import ReapiError

from .api_keys.limits import KeyLimits, LimitsInvalid, parse_limits
from .billing import repository as payments_repository
from .billing.service import Billing
from .billing.settings import format_money
from .config import CONFIG_ENV, ConfigError, Settings, describe_settings_error
from .config_check import Problem, check_live, check_settings, not_json
from .database_problems import database_problem, describe_database_error
from .errors import GatewayError
from .extras import MissingExtraError
from .fleet_secret import resolve_for
from .models import PromoCode
from .serving import run_server
from .sqlite_path import sqlite_problem

# The administration commands' modules (accounts, billing, notices, promotions, usage export, the
# demo) are imported by the command that needs them: `reapi-server serve` runs without them.
if TYPE_CHECKING:
    from .api_keys.service import KeyView
    from .billing.operator import PaymentView, RefundDone
    from .email.notices import NoticeDraft, Progress

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
credits_app = typer.Typer(help="Grant or adjust credits.", no_args_is_help=True)
outputs_app = typer.Typer(help="Delete stored outputs, run retention.", no_args_is_help=True)
users_app = typer.Typer(
    help="People who sign in: list, show, export, promote to admin, disable, enable, delete, "
    "reset two-factor. Each operator change is written to the audit log (actor: cli).",
    no_args_is_help=True,
)
notify_app = typer.Typer(
    help="Mail users through the outbox: policy change notices, newsletters.",
    no_args_is_help=True,
)
usage_app = typer.Typer(help="Export an account's usage rows.", no_args_is_help=True)
promo_app = typer.Typer(
    help="Promotion codes: create, list, withdraw. Each change is written to the audit log "
    "(actor: cli).",
    no_args_is_help=True,
)
app.add_typer(accounts_app, name="accounts")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
app.add_typer(outputs_app, name="outputs")
app.add_typer(usage_app, name="usage")
app.add_typer(notify_app, name="notify")
payments_app = typer.Typer(help="Payments made through Stripe: list, refund.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")
app.add_typer(promo_app, name="promo")

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
        settings = Settings().with_overrides(data_dir=data_dir, database_url=database_url, **more)
    except ValidationError as error:
        _exit_with(describe_settings_error(error))
    except SettingsError as error:  # a list or table in the environment that is not JSON
        _exit_with(not_json(error))
    except ConfigError as error:  # a secret's file cannot be read
        _exit_with(str(error))
    except tomllib.TOMLDecodeError as error:
        _exit_with(f"the config file is not valid TOML ({error})")
    except OSError as error:  # the config file named cannot be read
        reason = error.strerror or type(error).__name__
        _exit_with(f"the config file {error.filename or ''} cannot be read ({reason})")
    if settings.database_url is not None or settings.data_dir.is_dir():  # else made here
        unusable = sqlite_problem(settings.resolved_database_url)
        if unusable is not None:
            _exit_with(unusable)
    return settings


def _exit_with(message: str) -> NoReturn:
    """One line on stderr and exit status 1: a configuration mistake needs no traceback."""
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except (GatewayError, ReapiError) as error:
        message = error.message
    except ConfigError as error:
        message = str(error)
    except (SQLAlchemyError, OSError) as error:
        # A database the command cannot reach or use (a wrong password, a database not made):
        # what to change, in one line. Any other error is a bug: its traceback is wanted.
        said = database_problem(error)
        if said is None:
            raise
        message = f"database: {said}"
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
    """Run the gateway (uvicorn with uvloop and httptools), after check-config's checks: it
    does not start on a configuration with problems (an unreachable Redis or S3 bucket is only
    said: the gateway falls back, or answers 502 until storage is back)."""
    overrides = {"data_dir": data_dir, "database_url": database_url}
    settings = _checked(config, {**overrides, "host": host, "port": port, "workers": workers})
    try:
        run_server(settings)
        return
    except ConfigError as error:
        message = str(error)
    except SQLAlchemyError as error:  # the database went away between the check and now
        message = describe_database_error(error)
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)


def _report(problems: list[Problem], *, all_fatal: bool) -> bool:
    """Print one line per problem; True when one of them stops the start."""
    stop = False
    for problem in problems:
        fatal = problem.fatal or (all_fatal and not problem.advisory)
        stop = stop or fatal
        label = "error" if fatal else "warning"
        typer.secho(f"{label}: {problem.text}", err=True, fg="red" if fatal else "yellow")
    return stop


def _checked(config: Path | None, overrides: dict[str, Any], *, strict: bool = False) -> Settings:
    """The settings, checked as check-config does; exits (status 1) on a problem."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    settings, problems = check_settings(os.environ, overrides)
    if settings is not None and not problems:
        problems = asyncio.run(check_live(settings))
    if _report(problems, all_fatal=strict) or settings is None:
        raise typer.Exit(1)
    return settings


@app.command("check-config")
def check_config(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None
) -> None:
    """Check a configuration (environment, config file, secret files) and what it points at
    (database, Redis, S3 bucket): one line per problem, exit status 1 if there is any."""
    _checked(config, {"data_dir": data_dir, "database_url": database_url}, strict=True)
    typer.echo("configuration ok")


@app.command()
def migrate(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    adopt_secret: Annotated[
        bool,
        typer.Option(
            "--adopt-secret",
            help="Make the configured secret_key the fleet's (the database's) secret. "
            "Idempotency keys sent before are then not recognised.",
        ),
    ] = False,
) -> None:
    """Create or upgrade the database schema."""
    from . import admin

    settings = _settings(data_dir, database_url, config)
    if adopt_secret:
        if settings.secret_key is None:
            typer.secho("error: --adopt-secret needs secret_key set", err=True, fg="red")
            raise typer.Exit(1)
        _run(resolve_for(settings, migrate=True, adopt=True))
        typer.echo("database is up to date; the configured secret is the fleet's")
        return
    done = _run(admin.migrate(settings))
    if done.newer:
        typer.echo(
            f"the database is at {', '.join(sorted(done.newer))}, newer than this version: "
            "left as it is (this version runs on it; upgrade reapi to migrate further)"
        )
        return
    after = ", ".join(sorted(done.after))
    if not done.before:
        typer.echo(f"database created at {after}")
    elif done.before != done.after:
        typer.echo(f"database migrated from {', '.join(sorted(done.before))} to {after}")
    else:
        typer.echo(f"database is up to date ({after})")


@accounts_app.command("create")
def accounts_create(
    email: Email,
    credits: Annotated[int, typer.Option("--credits", min=0, help="Initial credits.")] = 0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account (optionally with credits)."""
    from . import admin

    view = _run(admin.add_account(_settings(data_dir, database_url), email, credits))
    typer.echo(f"account {view.id} {view.email} balance={view.balance}")


@accounts_app.command("show")
def accounts_show(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show an account's balance."""
    from . import admin

    view = _run(admin.show_account(_settings(data_dir, database_url), email))
    typer.echo(f"account {view.id} {view.email} balance={view.balance} reserved={view.reserved}")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


@users_app.command("list")
def users_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List users: id, email, verified or not, created, accounts owned; admins and disabled
    accounts are marked."""
    from . import admin

    for user in _run(admin.list_users(_settings(data_dir, database_url))):
        state = "verified" if user.verified else "unverified"
        accounts = ",".join(user.account_ids) or "-"
        marks = ("  admin" if user.role == "admin" else "") + (
            "  disabled" if user.disabled_account_ids else ""
        )
        typer.echo(f"{user.id}  {user.email}  {state}  {_when(user.created_at)}  {accounts}{marks}")


@users_app.command("show")
def users_show(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show a user: verification, password set, sessions, consents, accounts."""
    from . import admin

    user = _run(admin.show_user(_settings(data_dir, database_url), email))
    typer.echo(f"user {user.id} {user.email}")
    typer.echo(f"  role: {user.role}")
    typer.echo(f"  email: {'verified' if user.verified else 'not verified'}")
    typer.echo(f"  password: {'set' if user.has_password else 'not set'}")
    typer.echo(f"  created: {_when(user.created_at)}")
    typer.echo(f"  accounts: {', '.join(user.account_ids) or '-'}")
    for account_id in user.disabled_account_ids:
        typer.echo(f"  disabled: {account_id}")
    typer.echo(f"  sessions: {user.sessions}")
    typer.echo(f"  two-factor: {'on' if user.two_factor else 'off'}")
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
    from . import admin

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
    from . import admin
    from .accounts.export import to_json

    document = _run(admin.export_user(_settings(data_dir, database_url, config), email))
    body = to_json(document)
    if output is None:
        sys.stdout.buffer.write(body)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # personal data
    os.fchmod(fd, 0o600)  # a file that was there keeps its mode through O_TRUNC
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    typer.echo(f"wrote {output}", err=True)


@users_app.command("reset-2fa")
def users_reset_two_factor(
    email: Email,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Turn a user's two-factor authentication off (lost app and backup codes): check who they
    are first. Their sessions end and they are mailed."""
    from . import admin

    if not yes:
        typer.confirm(f"Turn off two-factor authentication for {email}?", abort=True)
    _run(admin.reset_two_factor(_settings(data_dir, database_url), email))
    typer.echo(f"two-factor authentication is off for {email.strip().lower()}")


@users_app.command("promote")
def users_promote(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Make a person an admin (the /admin pages). Their sessions end: they sign in again."""
    from . import admin

    shown = email.strip().lower()
    if _run(admin.promote(_settings(data_dir, database_url), email)):
        typer.echo(f"promoted {shown} to admin; their sessions are signed out")
    else:
        typer.echo(f"{shown} is already an admin")


def _set_disabled(email: str, data_dir: Path | None, database_url: str | None, *, on: bool) -> None:
    from . import admin

    account_id, changed = _run(
        admin.set_disabled(_settings(data_dir, database_url), email, disabled=on)
    )
    verb = "disabled" if on else "enabled"
    if changed:
        typer.echo(f"{verb} account {account_id}")
    else:
        typer.echo(f"account {account_id} is already {verb}")


@users_app.command("disable")
def users_disable(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Disable the person's account: its keys get 403 account_disabled (running servers: on
    their next lookup of the key, within two seconds)."""
    _set_disabled(email, data_dir, database_url, on=True)


@users_app.command("enable")
def users_enable(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Enable a disabled account again."""
    _set_disabled(email, data_dir, database_url, on=False)


SpendLimit = Annotated[
    str | None,
    typer.Option("--spend-limit", help="Credits the key may spend per period ('none': no limit)."),
]
Period = Annotated[
    str | None,
    typer.Option("--period", help="The spend limit's period: daily, weekly, monthly or never."),
]
Models = Annotated[
    str | None,
    typer.Option("--models", help="Models the key may call, comma-separated ('all': any)."),
]
Expires = Annotated[
    str | None,
    typer.Option("--expires", help="Expiry: YYYY-MM-DD, 00:00 UTC ('never': none)."),
]
Rpm = Annotated[
    str | None,
    typer.Option("--rpm", help="Requests per minute ('default': the server's setting)."),
]
MaxVideos = Annotated[
    str | None,
    typer.Option("--max-videos", help="Concurrent video jobs ('default': the server's)."),
]


def _typed_limits(
    spend_limit: str | None,
    period: str | None,
    models: str | None,
    expires: str | None,
    rpm: str | None,
    max_videos: str | None,
) -> dict[str, Any]:
    """The limit flags given, read (`parse_limits`); a refusal is one line and exit status 1."""
    typed = {
        name: value
        for name, value in (
            ("spend_limit", spend_limit),
            ("spend_period", period),
            ("models", models),
            ("expires_at", expires),
            ("requests_per_minute", rpm),
            ("max_concurrent_videos", max_videos),
        )
        if value is not None
    }
    try:
        return parse_limits(typed)
    except LimitsInvalid as error:
        message = error.message
    _exit_with(message)


def _limits_line(view: KeyView) -> str:
    if view.kind != "model":
        return "management"
    limits = view.limits
    parts = [
        f"spend {view.spend}/{limits.spend_limit} {limits.spend_period}"
        if limits.spend_limit is not None
        else f"spend {view.spend} {limits.spend_period}",
        f"models {','.join(limits.models)}" if limits.models is not None else "models all",
    ]
    if limits.expires_at is not None:
        parts.append(f"expires {_when(limits.expires_at)}")
    if limits.requests_per_minute is not None:
        parts.append(f"rpm {limits.requests_per_minute}")
    if limits.max_concurrent_videos is not None:
        parts.append(f"videos {limits.max_concurrent_videos}")
    return "  ".join(parts)


@keys_app.command("create")
def keys_create(
    email: Email,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    spend_limit: SpendLimit = None,
    period: Period = None,
    models: Models = None,
    expires: Expires = None,
    rpm: Rpm = None,
    max_videos: MaxVideos = None,
    management: Annotated[
        bool,
        typer.Option(
            "--management", help="A management key (rk_mgmt_): manages keys, cannot call models."
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue an API key, optionally with limits. It is printed once: only its hash is kept."""
    from . import admin

    changes = _typed_limits(spend_limit, period, models, expires, rpm, max_videos)
    settings = _settings(data_dir, database_url)
    if management and changes:
        _exit_with("a management key cannot call models: it takes no limits")
    limits = KeyLimits().changed(changes) if changes else None
    kind = "management" if management else "model"
    issued = _run(admin.new_key(settings, email, name, limits=limits, kind=kind))
    typer.echo(f"key id: {issued.key_id}")
    variable = "REAPI_MANAGEMENT_KEY" if management else "REAPI_API_KEY"
    typer.echo(f"{variable}={issued.plaintext}")
    typer.echo("This key is shown once; store it now.", err=True)


@keys_app.command("set-limits")
def keys_set_limits(
    key_id: Annotated[str, typer.Argument(help="The key id (key_...).")],
    spend_limit: SpendLimit = None,
    period: Period = None,
    models: Models = None,
    expires: Expires = None,
    rpm: Rpm = None,
    max_videos: MaxVideos = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a key's limits: each flag given replaces that limit; the others stay."""
    from . import admin

    changes = _typed_limits(spend_limit, period, models, expires, rpm, max_videos)
    if not changes:
        _exit_with("give at least one limit to change (see --help)")
    view = _run(admin.set_key_limits(_settings(data_dir, database_url), key_id, changes))
    typer.echo(f"{view.id}  {view.masked}  {_limits_line(view)}")


@keys_app.command("list")
def keys_list(email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List an account's keys: id, prefix and last four, state, name, limits, spend, default
    webhook."""
    from . import admin

    for view in _run(admin.list_keys(_settings(data_dir, database_url), email)):
        state = "revoked" if view.revoked_at else "expired" if view.expired else "active"
        name = view.name or "-"
        line = f"{view.id}  {view.masked}  {state}  {name}  {_limits_line(view)}"
        if view.webhook_url:
            gone = " (disabled: the receiver answered 410 Gone)" if view.webhook_disabled else ""
            line += f"  webhook={view.webhook_url}{gone}"
        typer.echo(line)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id (key_...) or the key itself.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key: refused at once here, within two seconds by running servers."""
    from . import admin

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
    from . import admin

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
    from . import admin

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
    from . import admin

    view = _run(admin.grant_credits(_settings(data_dir, database_url), email, credits))
    typer.echo(f"account {view.email} balance={view.balance}")


@credits_app.command("adjust")
def credits_adjust(
    email: Email,
    credits: Annotated[
        int, typer.Option("--credits", help="Credits to add, or to take away (negative).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why, in one line (kept).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Correct an account's balance with a reason (ledger kind adjustment; audited)."""
    from . import admin

    view = _run(admin.adjust_credits(_settings(data_dir, database_url), email, credits, reason))
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
    from . import admin

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
    from . import admin

    report = _run(admin.purge_expired(_settings(data_dir, database_url, config)))
    typer.echo(
        f"deleted {report.outputs} outputs, {report.usage_rows} usage rows, "
        f"{report.video_jobs} video jobs, {report.credit_holds} credit holds, "
        f"{report.payments} payment records past their 7 years; "
        f"{report.ledger_rows} ledger rows folded into carried sums; "
        f"{report.audit_rows} audit-log rows past audit_retention_days; "
        f"{report.objects} objects removed from storage"
    )


@usage_app.command("export")
def usage_export(
    email: Email,
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD [30 days ago].")
    ] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD [today].")] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="IANA zone of the days and times [the user's setting]."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="CSV file to write (0600) [stdout].")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write an account's usage rows as CSV (newest first), as the dashboard exports them."""
    from .usage.command import export_usage

    written = _run(
        export_usage(
            _settings(data_dir, database_url),
            email,
            first=first,
            last=last,
            time_zone=time_zone,
            output=output,
            stdout=sys.stdout.buffer,
        )
    )
    if output is not None:
        typer.echo(f"wrote {written} usage rows to {output}")


NoticeFile = Annotated[
    Path,
    typer.Option("--file", exists=True, dir_okay=False, help="The text, in Markdown (UTF-8)."),
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=1000, help="Users queued per transaction.")
]
#: A notice longer than this is a mistake (a wrong file), not a notice.
NOTICE_LIMIT = 256 * 1024


def _notice_text(path: Path) -> str:
    data = path.read_bytes()
    if len(data) > NOTICE_LIMIT:
        typer.secho(f"error: {path} is over {NOTICE_LIMIT // 1024} KiB", err=True, fg="red")
        raise typer.Exit(1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    typer.secho(f"error: {path} is not UTF-8 text", err=True, fg="red")
    raise typer.Exit(1)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    typer.secho("error: --effective must be a date, YYYY-MM-DD", err=True, fg="red")
    raise typer.Exit(1)


def _progress(progress: Progress) -> None:
    typer.echo(
        f"notice {progress.notice_id}: queued for {progress.queued} of {progress.total} users"
    )


def _send_notice(settings: Settings, draft: NoticeDraft, batch_size: int) -> None:
    from . import admin

    done = _run(admin.send_notice(settings, draft, batch=batch_size, on_batch=_progress))
    typer.echo(
        f"notice {done.notice_id}: {done.added} queued by this run, {done.queued} in all; "
        "the outbox sends them"
    )


@notify_app.command("policy-change")
def notify_policy_change(
    effective: Annotated[
        str,
        typer.Option("--effective", help="The day the change takes effect (YYYY-MM-DD, UTC)."),
    ],
    file: NoticeFile,
    subject: Annotated[
        str | None, typer.Option(help="The subject (default: one that names the date).")
    ] = None,
    batch_size: BatchSize = 100,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Email every user before a policy change takes effect (whatever their newsletter choice).

    Run the same command again to continue an interrupted run: nobody gets a notice twice."""
    from .email.notices import NoticeDraft

    day = _day(effective)
    settings = _settings(data_dir, database_url, config)
    subject = subject or (
        f"Changes to the {settings.site_name} policies, effective {day.day} {day:%B %Y}"
    )
    draft = NoticeDraft("policy_change", subject, _notice_text(file), effective_on=day)
    _send_notice(settings, draft, batch_size)


@notify_app.command("newsletter")
def notify_newsletter(
    subject: Annotated[str, typer.Option(help="The subject of the issue.")],
    file: NoticeFile,
    batch_size: BatchSize = 100,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Email a newsletter issue to users who opted in and verified their address.

    Run the same command again to continue an interrupted run: nobody gets an issue twice."""
    from .email.notices import NoticeDraft

    settings = _settings(data_dir, database_url, config)
    draft = NoticeDraft("newsletter", subject, _notice_text(file))
    _send_notice(settings, draft, batch_size)


@notify_app.command("unsubscribe")
def notify_unsubscribe(
    email: Email,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Stop the newsletter for a user (asked by mail, e.g. to the unsubscribe mailbox)."""
    from . import admin

    was = _run(admin.unsubscribe(_settings(data_dir, database_url), email))
    typer.echo(
        f"{email} will no longer receive the newsletter" + ("" if was else " (was not subscribed)")
    )


@payments_app.command("list")
def payments_list(
    email: Annotated[
        str | None, typer.Option("--email", help="Only this account owner's payments.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """List payments, newest first: id, date, account owner, pack, credits, amount, status."""
    from . import admin
    from .billing.operator import list_payments, with_billing

    settings = _settings(data_dir, database_url, config)

    async def work(billing: Billing) -> list[PaymentView]:
        account_id = None
        if email is not None:
            account_id = (await admin.show_account(settings, email)).id
        return await list_payments(billing, limit=limit, account_id=account_id)

    views = _run(with_billing(settings, work))
    if not views:  # on stderr: stdout stays one line per payment, for scripts
        typer.echo("no payments" + (" for this account" if email else ""), err=True)
    for view in views:
        refunded = f" refunded {view.refunded}" if view.amount_refunded else ""
        typer.echo(
            f"{view.id}  {_when(view.created_at)}  {view.email or '(deleted account)'}  "
            f"{view.product}  {view.credits:,} credits  {view.price}  {view.status}"
            f"{refunded}"
        )


@payments_app.command("refund")
def payments_refund(
    payment: Annotated[str, typer.Option("--payment", help="The payment's id (pay_...).")],
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="How much, in the payment's currency (5.00); default: all."),
    ] = None,
    take_back_spent: Annotated[
        bool,
        typer.Option(
            "--take-back-spent",
            help="Credits already spent become debt (default: only unspent credits are taken).",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Refund a payment through Stripe and take back the credits it bought."""
    from .audit import Actor
    from .billing.operator import parse_money, refund_payment, with_billing

    settings = _settings(data_dir, database_url, config)

    async def work(billing: Billing) -> RefundDone:
        minor = None
        if amount is not None:
            async with billing.db.read() as session:
                found = await payments_repository.get_payment(session, payment)
            minor = parse_money(amount, found.currency) if found is not None else None
        return await refund_payment(
            billing, payment, amount=minor, take_back_spent=take_back_spent, actor=Actor.cli()
        )

    done = _run(with_billing(settings, work))
    if done.waiting:
        typer.echo(
            f"refunded {format_money(done.amount, done.currency)} ({done.refund_id}): its "
            "credits are taken back once the account's running requests release their holds"
        )
        return
    typer.echo(
        f"refunded {format_money(done.amount, done.currency)} ({done.refund_id}): "
        f"{done.taken:,} credits taken back, {done.debt:,} owed, {done.waived:,} waived (spent)"
    )


def _promo_line(code: PromoCode) -> str:
    uses = f"{code.redeemed}/{code.max_uses}" if code.max_uses is not None else f"{code.redeemed}/-"
    if code.disabled_at is not None:
        state = f"withdrawn {_when(code.disabled_at)}"
    elif code.expires_at is not None:
        state = f"expires {_when(code.expires_at)}"
    else:
        state = "no expiry"
    note = f"  {code.note}" if code.note else ""
    return f"{code.code}  {code.credits} credits  uses {uses}  {state}  {code.id}{note}"


@promo_app.command("create")
def promo_create(
    credits: Annotated[str, typer.Option("--credits", help="Credits each redemption gives.")],
    code: Annotated[
        str,
        typer.Option(
            "--code", help="The code people type (default: a random one, like K7QX-M4RT-ZP9H)."
        ),
    ] = "",
    uses: Annotated[
        str,
        typer.Option("--uses", help="How many accounts may redeem it in all (default: no limit)."),
    ] = "",
    expires: Annotated[
        str,
        typer.Option("--expires", help="Refused from this date (YYYY-MM-DD, UTC) or time on."),
    ] = "",
    note: Annotated[str, typer.Option("--note", help="Your own words about it.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a promotion code: each account may redeem it once, on the billing page."""
    from . import admin
    from .identity.errors import FormInvalid
    from .promo.service import parse_terms

    try:
        terms = parse_terms(code=code, credits=credits, max_uses=uses, expires=expires, note=note)
    except FormInvalid as error:
        message = "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in error.errors.items())
    else:
        created = _run(admin.create_promo(_settings(data_dir, database_url), terms))
        typer.echo(f"created {_promo_line(created)}")
        return
    _exit_with(message.replace("--max-uses", "--uses").replace("--expires-at", "--expires"))


@promo_app.command("list")
def promo_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List promotion codes, the newest first: code, credits, uses (taken/allowed), state."""
    from . import admin

    codes = _run(admin.list_promos(_settings(data_dir, database_url)))
    if not codes:  # on stderr: stdout stays one line per code, for scripts
        typer.echo("no promotion codes", err=True)
    for code in codes:
        typer.echo(_promo_line(code))


@promo_app.command("disable")
def promo_disable(
    code: Annotated[str, typer.Argument(help="The code (or its id, promo_...).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Withdraw a promotion code: refused from now on (credit given before stays)."""
    from . import admin

    if _run(admin.disable_promo(_settings(data_dir, database_url), code)):
        typer.echo("withdrawn")
    else:
        typer.echo("already withdrawn")


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
    from .demo import run_demo

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
