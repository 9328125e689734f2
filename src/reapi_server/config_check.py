"""What `reapi-server check-config` reports, and `serve` checks before it starts: one line per
problem, never a value (it may be a secret), never a traceback.

- names no setting reads, in the environment (`REAPI_*`) or the config file, each with the
  nearest valid name when one is close (a typo would otherwise be ignored: a default silently
  in force);
- values the settings refuse (`storage_backend = "s3"` without `s3_bucket`, a bad CIDR, ...),
  files of secrets that cannot be read;
- the database: it answers, and on PostgreSQL a configured secret agrees with the fleet's;
- an optional extra that a setting needs and is not installed (`tracing = true` without `otel`);
- Redis unreachable, S3 bucket unreachable: `serve` starts anyway (it falls back, or answers 502
  until storage is back) but says so; `check-config` counts them as problems. So is an S3 bucket
  that keeps deleted objects (versioning on, no rule expiring noncurrent versions). A bucket
  that does not exist stops `serve` too: no outage ends that.
- advice, a warning for both commands, never a stop: the `file` mail backend (the default) on a
  gateway served over https, which is a public one: its mail (verification and reset links,
  receipts) would be written to `data_dir/mail` and reach nobody; a `secret_key` shorter than
  32 bytes (a guessable root for every keyed hash), which deployments made before this check
  may have and must keep starting with.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict, SettingsError
from sqlalchemy import text

from .bucket_problems import bucket_problem
from .config import ConfigError, Settings, settings_error_lines, unknown_variables
from .database_problems import describe_database_error
from .db import Database
from .extras import OTEL_PACKAGES, MissingExtraError, require
from .provider_names import provider_name_problems
from .secret_files import mistyped_secret_files
from .sqlite_path import sqlite_problem

__all__ = ["Problem", "check_live", "check_settings", "not_json"]


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    #: False: `serve` starts anyway (it has a fallback), after saying so.
    fatal: bool = True
    #: A likely mistake that breaks nothing here: a warning for `check-config` too.
    advisory: bool = False


@contextmanager
def _environment_without(names: list[str]) -> Iterator[None]:
    """Settings refuse an unknown variable before they look at anything else; with each one
    already reported, leave them out so that every other problem is found in the same run."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class _IgnoringUnknownKeys(Settings):
    model_config = SettingsConfigDict(**{**Settings.model_config, "extra": "ignore"})


def _beside_unknown_keys(unknown: list[str], given: Mapping[str, Any]) -> list[str]:
    """The problems an unknown config key hides (the model's own checks run only once every
    field is valid): the settings again, unknown keys ignored this time."""
    try:
        with _environment_without(unknown):
            _IgnoringUnknownKeys(**given)
    except ValidationError as error:
        return settings_error_lines(error)
    except Exception:  # reported by the first pass
        return []
    return []


def check_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> tuple[Settings | None, list[Problem]]:
    """The settings (None if they cannot be made) and what is wrong with them. `environ` is
    the process's environment (the settings read it)."""
    unknown = [name for name in environ if unknown_variables({name: environ[name]})]
    problems = [Problem(line) for line in unknown_variables(environ)]
    problems += [Problem(line) for line in mistyped_secret_files(Settings, environ)]
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        with _environment_without(unknown):
            settings = Settings(**given)
    except ValidationError as error:
        lines = settings_error_lines(error)
        if any(item["type"] == "extra_forbidden" for item in error.errors()):
            lines += [line for line in _beside_unknown_keys(unknown, given) if line not in lines]
        return None, problems + [Problem(line) for line in lines]
    except ConfigError as error:  # a secret's file cannot be read
        return None, [*problems, Problem(str(error))]
    except SettingsError as error:  # a list or table in the environment that is not JSON
        return None, [*problems, Problem(not_json(error))]
    except tomllib.TOMLDecodeError as error:
        return None, [*problems, Problem(f"the config file is not valid TOML ({error})")]
    except OSError as error:  # the config file named cannot be read
        reason = error.strerror or type(error).__name__
        where = error.filename or ""
        return None, [*problems, Problem(f"the config file {where} cannot be read ({reason})")]
    return (settings if not problems else None), problems


def not_json(error: SettingsError) -> str:
    """pydantic-settings' words name the field; the value (maybe a secret) is left out."""
    found = re.search(r'field "([^"]+)"', str(error))
    if found is None:
        return "a setting's value in the environment is not valid JSON"
    name = found.group(1)
    return (
        f"{name}: REAPI_{name.upper()} is not valid JSON (a list or table in the environment "
        f"is written as JSON, quoted for the shell: REAPI_{name.upper()}='[\"...\"]')"
    )


async def _database(settings: Settings) -> list[Problem]:
    from .fleet_secret import verifier
    from .models import FleetSecret

    if settings.database_url is None and not settings.data_dir.is_dir():
        return []  # a new installation: `serve` makes the data dir and the SQLite file
    unusable = sqlite_problem(settings.resolved_database_url)
    if unusable is not None:
        return [Problem(unusable)]
    db = Database(settings.resolved_database_url, timeout=settings.database_timeout)
    try:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
            if not db.is_postgres or settings.secret_key is None:
                return []
            try:
                row = await session.get(FleetSecret, 1)
            except Exception:  # not migrated yet: `serve` makes the row
                return []
    except Exception as error:
        return [Problem(describe_database_error(error))]
    finally:
        await db.dispose()
    configured = verifier(settings.secret_key.get_secret_value().encode())
    if row is not None and not hmac.compare_digest(row.verifier, configured):
        return [Problem("secret_key disagrees with the secret the fleet's database holds")]
    return []


async def _redis(settings: Settings) -> list[Problem]:
    if settings.redis_url is None:
        return []
    try:
        require("redis_url", "redis", "redis")
    except MissingExtraError as error:
        return [Problem(str(error))]
    from redis.asyncio import Redis

    timeout = settings.redis_timeout * 4  # a start-up check: a little more patience
    client: Any = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        await client.ping()
    except Exception as error:
        return [Problem(f"redis: unreachable ({type(error).__name__})", fatal=False)]
    finally:
        await client.aclose()
    return []


def _bucket(settings: Settings) -> list[Problem]:
    if settings.storage_backend != "s3":
        return []
    try:
        require('storage_backend = "s3"', "s3", "boto3")
    except MissingExtraError as error:
        return [Problem(str(error))]
    from .mirror.s3 import s3_client

    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
    except Exception as error:
        found = bucket_problem(error)
        return [Problem(found.text, fatal=found.fatal)]
    return _versions_kept(client, settings.s3_bucket)


def _versions_kept(client: Any, bucket: str | None) -> list[Problem]:
    """In a versioned bucket a deleted object stays as a noncurrent version: an output deleted
    by its owner, the retention job or an account's deletion would live on, unless a lifecycle
    rule expires noncurrent versions under `outputs/`. A key not allowed to ask is not told."""
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    except Exception:
        return []
    if status not in ("Enabled", "Suspended") or _expires_noncurrent(client, bucket):
        return []
    return [
        Problem(
            "s3: bucket versioning is on and no lifecycle rule expires noncurrent versions"
            " under outputs/: deleted outputs stay in the bucket (docs: storage, Deletion)",
            fatal=False,
        )
    ]


def _expires_noncurrent(client: Any, bucket: str | None) -> bool:
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception:  # NoSuchLifecycleConfiguration: no rule at all
        return False
    for rule in rules:
        found = rule.get("Filter", {})
        if "Tag" in found or found.get("And", {}).get("Tags"):
            continue  # the gateway tags no object
        prefix = found.get("Prefix", found.get("And", {}).get("Prefix", rule.get("Prefix", "")))
        if (
            rule.get("Status") == "Enabled"
            and "NoncurrentVersionExpiration" in rule
            and "outputs/".startswith(prefix)
        ):
            return True
    return False


def _mail(settings: Settings) -> list[Problem]:
    public = (settings.public_base_url or "").lower().startswith("https://")
    if settings.email_backend != "file" or not public:
        return []
    return [
        Problem(
            'email_backend = "file" with an https public_base_url: mail (verification and '
            "password reset links, receipts) is written to data_dir/mail and sent to nobody; "
            'set email_backend = "resend" (docs/email.md)',
            fatal=False,
            advisory=True,
        )
    ]


#: What the docs ask of `secret_key` (`openssl rand -hex 32` gives 64 bytes of text).
SECRET_KEY_MIN_BYTES = 32


def _secret_length(settings: Settings) -> list[Problem]:
    secret = settings.secret_key
    if secret is None or len(secret.get_secret_value().encode()) >= SECRET_KEY_MIN_BYTES:
        return []
    return [
        Problem(
            f"secret_key is shorter than {SECRET_KEY_MIN_BYTES} bytes: the fleet's keyed hashes "
            "and derived keys could be guessed; give every instance 32 random bytes, hex "
            "(`openssl rand -hex 32`), knowing what a change resets (two-factor apps, webhook "
            'secrets: docs/server.md, "One secret for the fleet")',
            fatal=False,
            advisory=True,
        )
    ]


def _tracing(settings: Settings) -> list[Problem]:
    if not settings.tracing:
        return []
    try:
        require("tracing = true", "otel", *OTEL_PACKAGES)
    except MissingExtraError as error:
        return [Problem(str(error))]
    return []


async def check_live(settings: Settings) -> list[Problem]:
    """What the settings point at: the database, Redis, the S3 bucket; and the extras they need
    that have no check of their own above."""
    found = await asyncio.gather(
        _database(settings), _redis(settings), asyncio.to_thread(_bucket, settings)
    )
    return [
        *(Problem(line) for line in provider_name_problems(settings)),
        *_mail(settings),
        *_secret_length(settings),
        *_tracing(settings),
        *(problem for problems in found for problem in problems),
    ]
