"""A model key's limits, as the keys page, the management API and the CLI set them, and the
rules each must meet. One place, so that all three refuse the same things the same way."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from ..errors import GatewayError
from ..models import MAX_CREDITS, ApiKey
from .periods import PERIODS

__all__ = [
    "LIMIT_FIELDS",
    "MAX_EXPIRY_YEARS",
    "MAX_MODELS",
    "MAX_REQUESTS_PER_MINUTE",
    "MAX_VIDEOS",
    "KeyLimits",
    "LimitsInvalid",
    "dump_allowlist",
    "parse_allowlist",
    "parse_expiry",
    "parse_limits",
]

MAX_REQUESTS_PER_MINUTE = 10**9
MAX_VIDEOS = 10**9
#: The most models one allowlist may name (every catalog model fits many times over).
MAX_MODELS = 200
#: How far ahead an expiry may be: further is a typo or a stand-in for "never" (which is no
#: expiry), and a date past year 9999 cannot even be shown.
MAX_EXPIRY_YEARS = 100
MAX_EXPIRY_SECONDS = MAX_EXPIRY_YEARS * 365.25 * 86400


class LimitsInvalid(GatewayError):
    """One or more limits break their rules: field name → message (the form shows each beside
    its field; the API answers the first)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        name, message = next(iter(errors.items()))
        super().__init__(message, param=name, code="invalid_limit")
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """None in any field: no such limit (the server's default for requests per minute and
    concurrent videos)."""

    spend_limit: int | None = None
    spend_period: str = "monthly"
    #: Catalog model ids the key may call (None: every model).
    models: tuple[str, ...] | None = None
    expires_at: float | None = None
    requests_per_minute: int | None = None
    max_concurrent_videos: int | None = None

    @classmethod
    def of(cls, key: ApiKey) -> KeyLimits:
        allowlist = parse_allowlist(key.model_allowlist)
        return cls(
            spend_limit=key.spend_limit,
            spend_period=key.spend_period,
            models=tuple(sorted(allowlist)) if allowlist is not None else None,
            expires_at=key.expires_at,
            requests_per_minute=key.requests_per_minute,
            max_concurrent_videos=key.max_concurrent_videos,
        )

    def changed(self, changes: Mapping[str, Any]) -> KeyLimits:
        """These limits with `changes` (field → new value; None clears a limit)."""
        unknown = set(changes) - set(LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"not a limit: {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def checked(
        self,
        *,
        known_models: Collection[str],
        now: float,
        changed: Collection[str] | None = None,
    ) -> KeyLimits:
        """These limits if every rule holds (models in their canonical order), else
        `LimitsInvalid` naming each field that breaks one. `changed`: the fields being set
        (None: all); those stored before keep what they had (an expiry that has passed since,
        a model the catalog no longer has)."""
        changed = LIMIT_FIELDS if changed is None else changed
        errors: dict[str, str] = {}
        if self.spend_limit is not None and not 1 <= self.spend_limit <= MAX_CREDITS:
            errors["spend_limit"] = (
                f"The spend limit must be between 1 and {MAX_CREDITS:,} credits."
            )
        if self.spend_period not in PERIODS:
            errors["spend_period"] = "The period must be daily, weekly, monthly or never."
        models = self.models
        if models is not None and "models" in changed:
            unknown = sorted(set(models) - set(known_models))
            if unknown:
                errors["models"] = f"No such model on this gateway: {_short(unknown[0])}."
            elif not models:
                errors["models"] = "Name at least one model, or allow every model."
            elif len(set(models)) > MAX_MODELS:
                errors["models"] = f"Name at most {MAX_MODELS} models."
        if models is not None:
            models = tuple(sorted(set(models)))
        if "expires_at" in changed and self.expires_at is not None:
            if self.expires_at <= now:
                errors["expires_at"] = "The expiry date must be in the future."
            elif self.expires_at > now + MAX_EXPIRY_SECONDS:
                errors["expires_at"] = (
                    f"The expiry date must be within {MAX_EXPIRY_YEARS} years; leave it empty"
                    " for a key that never expires."
                )
        rpm = self.requests_per_minute
        if rpm is not None and not 1 <= rpm <= MAX_REQUESTS_PER_MINUTE:
            errors["requests_per_minute"] = (
                f"Requests per minute must be between 1 and {MAX_REQUESTS_PER_MINUTE:,}."
            )
        videos = self.max_concurrent_videos
        if videos is not None and not 1 <= videos <= MAX_VIDEOS:
            errors["max_concurrent_videos"] = (
                f"Concurrent videos must be between 1 and {MAX_VIDEOS:,}."
            )
        if errors:
            raise LimitsInvalid(errors)
        return replace(self, models=models)

    def columns(self) -> dict[str, Any]:
        """The `api_keys` columns these limits are stored in."""
        return {
            "spend_limit": self.spend_limit,
            "spend_period": self.spend_period,
            "model_allowlist": dump_allowlist(self.models),
            "expires_at": self.expires_at,
            "requests_per_minute": self.requests_per_minute,
            "max_concurrent_videos": self.max_concurrent_videos,
        }


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(KeyLimits))


def _short(text: str) -> str:
    return text if len(text) <= 64 else text[:61] + "..."


def parse_allowlist(stored: str | None) -> frozenset[str] | None:
    if stored is None:
        return None
    return frozenset(str(model) for model in json.loads(stored))


def dump_allowlist(models: Collection[str] | None) -> str | None:
    return None if models is None else json.dumps(sorted(models))


def parse_expiry(text: str, field: str = "expires_at") -> float:
    """A date (`YYYY-MM-DD`: its first second, UTC) or a date and time (ISO 8601; UTC unless
    it says otherwise) as Unix seconds."""
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None:
        raise LimitsInvalid(
            {field: "The expiry must be a date as YYYY-MM-DD (or an ISO 8601 date and time)."}
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


#: Words that clear a limit where limits are typed (the CLI; an empty form field does too).
_NO_LIMIT = frozenset({"", "none", "all", "never", "default", "off"})
_WHOLE = ("spend_limit", "requests_per_minute", "max_concurrent_videos")
_NAMES = {
    "spend_limit": "The spend limit",
    "requests_per_minute": "Requests per minute",
    "max_concurrent_videos": "Concurrent videos",
}


def parse_limits(typed: Mapping[str, str]) -> dict[str, Any]:
    """Limits typed as text (field name → text; a field left out is not changed) as values for
    `KeyLimits.changed`. An empty text, `none`, `all`, `never`, `default` or `off` clears a
    limit (the period is never cleared: empty, it stays). Refuses what is not a number, a date
    or a list of models (`LimitsInvalid`); the rules on the values are `KeyLimits.checked`'s."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in typed.items():
        text = raw.strip()
        if name == "spend_period":
            if text:  # a period is never cleared: left empty, it stays
                changes[name] = text.lower()
        elif text.lower() in _NO_LIMIT:
            changes[name] = None
        elif name in _WHOLE:
            if text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20:
                changes[name] = int(text)
            else:
                errors[name] = f"{_NAMES[name]} must be a whole number."
        elif name == "models":
            changes[name] = tuple(m for m in text.replace(",", " ").split() if m)
        elif name == "expires_at":
            try:
                changes[name] = parse_expiry(text, name)
            except LimitsInvalid as error:
                errors.update(error.errors)
        else:
            raise ValueError(f"not a limit: {name}")
    if errors:
        raise LimitsInvalid(errors)
    return changes
