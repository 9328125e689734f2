"""What `reapi-server check-config` reports, and `serve` checks before it starts: one line per
problem, never a value (it may be a secret), never a traceback.

- names no setting reads, in the environment (`REAPI_*`) or the config file, each with the
  nearest valid name when one is close (a typo would otherwise be ignored: a default silently
  in force);
- values the settings refuse (`storage_backend = "s3"` without `s3_bucket`, a bad CIDR, ...),
  files of secrets that cannot be read;
- the database: it answers, and on PostgreSQL a configured secret agrees with the fleet's;
- Redis unreachable, S3 bucket unreachable: `serve` starts anyway (it falls back, or answers 502
  until storage is back) but says so; `check-config` counts them as problems.
"""

from __future__ import annotations

import asyncio
import difflib
import hmac
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text

from reapi._settings import GATEWAY_ENV

from .config import CONFIG_ENV, ConfigError, Settings
from .db import Database
from .db_errors import error_name
from .secret_files import SECRETS_DIR_ENV, file_variables

__all__ = ["Problem", "check_live", "check_settings", "unknown_names"]

_PREFIX = "REAPI_"
_MAX_PROBLEMS = 50
#: The core reads these for every provider (`REAPI_<PROVIDER>_BASE_URL`).
_CORE_SUFFIXES = ("_BASE_URL",)


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    #: False: `serve` starts anyway (it has a fallback), after saying so.
    fatal: bool = True


def _nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _shown(name: str) -> str:
    """A name as the operator wrote it, bounded (it is theirs, but keep lines short)."""
    return name if len(name) <= 64 else name[:61] + "..."


def unknown_names(environ: Mapping[str, str], config: Mapping[str, Any]) -> list[Problem]:
    """`REAPI_*` variables and config file keys that no setting reads."""
    fields = list(Settings.model_fields)
    variables = [_PREFIX + name.upper() for name in fields]
    allowed = {*variables, *file_variables(Settings), *GATEWAY_ENV, CONFIG_ENV, SECRETS_DIR_ENV}
    problems = []
    for variable in sorted(environ):
        name = variable.upper()
        if not name.startswith(_PREFIX) or name in allowed:
            continue
        if name.partition("__")[0] in variables:  # nested: REAPI_PROVIDER_KEYS__OPENAI(_FILE)
            continue
        if name.endswith(_CORE_SUFFIXES):
            continue
        problems.append(
            Problem(f"unknown environment variable {_shown(variable)}{_nearest(name, variables)}")
        )
    for key in config:
        if key not in Settings.model_fields:
            problems.append(Problem(f"unknown setting {_shown(key)!r}{_nearest(key, fields)}"))
    return problems


def _validation_lines(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(Problem(f"{where}: {message}" if where else message))
    return problems


def check_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> tuple[Settings | None, list[Problem]]:
    """The settings (None if they cannot be made) and what is wrong with them."""
    config: dict[str, Any] = {}
    config_file = environ.get(CONFIG_ENV)
    problems: list[Problem] = []
    if config_file:
        try:
            config = tomllib.loads(Path(config_file).read_text())
        except OSError as error:
            problems.append(Problem(f"config file {config_file}: {error.strerror or error}"))
        except tomllib.TOMLDecodeError as error:
            problems.append(Problem(f"config file {config_file}: not TOML ({error})"))
    problems += unknown_names(environ, config)
    if problems and config_file and not config:
        return None, problems
    try:
        settings = Settings(**{k: v for k, v in (overrides or {}).items() if v is not None})
    except ValidationError as error:
        return None, problems + _validation_lines(error)
    except ConfigError as error:
        return None, [*problems, Problem(str(error))]
    return settings, problems[:_MAX_PROBLEMS]


async def _database(settings: Settings) -> list[Problem]:
    from .fleet_secret import verifier
    from .models import FleetSecret

    if settings.database_url is None and not settings.data_dir.is_dir():
        return []  # a new installation: `serve` makes the data dir and the SQLite file
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
        return [Problem(f"database: cannot use it ({error_name(error)})")]
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
        from redis.asyncio import Redis
    except ImportError:
        return [Problem("redis_url needs the redis package: pip install 'reapi[redis]'")]
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
    from .mirror.s3 import s3_client

    try:
        s3_client(settings).head_bucket(Bucket=settings.s3_bucket)
    except Exception as error:
        return [Problem(f"s3: bucket unreachable ({type(error).__name__})", fatal=False)]
    return []


async def check_live(settings: Settings) -> list[Problem]:
    """What the settings point at: the database, Redis, the S3 bucket."""
    found = await asyncio.gather(
        _database(settings), _redis(settings), asyncio.to_thread(_bucket, settings)
    )
    return [problem for problems in found for problem in problems]
