"""Secrets from files, for every secret setting, nested ones too: what container and service
managers hand a process (Docker and Compose secrets under /run/secrets, systemd's
LoadCredential=), so that secrets need not sit in the environment or the config file.

- `REAPI_<NAME>_FILE=/path`: the file holds the value of `REAPI_<NAME>` (e.g.
  `REAPI_SECRET_KEY_FILE`, `REAPI_PROVIDER_KEYS__OPENAI_FILE`,
  `REAPI_BILLING__STRIPE_SECRET_KEY_FILE`, `REAPI_OAUTH__GITHUB__CLIENT_SECRET_FILE`);
- `REAPI_SECRETS_DIR=/run/secrets`: a file there named like the variable without `REAPI_`, in
  lower case (`secret_key`, `provider_keys__openai`, `billing__stripe_secret_key`), holds its
  value. The directory must exist and be readable.

A list of secrets (`billing.stripe_webhook_secrets`) is one secret a line, or the JSON list the
environment variable takes; a table of them (`provider_keys` whole) the JSON object.

A value given directly (environment, command line) wins over a file, and a file over the config
file; a nested secret is merged into the rest of its table (`[billing]` of the config file).
A trailing newline is not part of the value. A file named but unreadable stops the start
(`ConfigError`), naming the variable and the path, never the contents.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from .config_errors import ConfigError

__all__ = [
    "SECRETS_DIR_ENV",
    "EnvWithoutSecretFiles",
    "SecretFiles",
    "file_variables",
    "mistyped_secret_files",
    "reads_variable",
    "secret_settings",
]

PREFIX = "REAPI_"
SECRETS_DIR_ENV = "REAPI_SECRETS_DIR"
#: Not a SecretStr (a URL), but it holds the database's password.
_ALSO_SECRET = ("database_url",)
#: Between a setting and its nested one, as pydantic-settings reads the environment.
_NESTED = "__"

Kind = Literal["value", "list", "mapping"]


@dataclass(frozen=True)
class Secret:
    """A setting that holds a secret: its path from the top (`("billing", "stripe_secret_key")`)
    and its shape (one secret, a list of them, a table of them keyed by any name)."""

    path: tuple[str, ...]
    kind: Kind

    @property
    def name(self) -> str:
        """As in REAPI_SECRETS_DIR: `billing__stripe_secret_key`."""
        return _NESTED.join(self.path)

    @property
    def variable(self) -> str:
        return f"{PREFIX}{self.name.upper()}_FILE"


def _options(annotation: Any) -> tuple[Any, ...]:
    """The types a setting's annotation allows (`X | None`: X)."""
    if get_origin(annotation) in (Union, UnionType):
        return tuple(a for a in get_args(annotation) if a is not NoneType)
    return (annotation,)


def _kind(annotation: Any) -> Kind | None:
    for option in _options(annotation):
        if option is SecretStr:
            return "value"
        args = get_args(option)
        if get_origin(option) is list and args == (SecretStr,):
            return "list"
        if get_origin(option) is dict and args[-1:] == (SecretStr,):
            return "mapping"
    return None


def _model(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _secrets(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[Secret]:
    for name, field in model.model_fields.items():
        kind = _kind(field.annotation)
        if kind is None and not path and name in _ALSO_SECRET:
            kind = "value"
        if kind is not None:
            yield Secret((*path, name), kind)
        elif (nested := _model(field.annotation)) is not None:  # billing, oauth.github
            yield from _secrets(nested, (*path, name))


@cache
def secrets_of(settings_cls: type[BaseModel]) -> tuple[Secret, ...]:
    """Every setting that may hold a secret (and so may come from a file), nested ones too."""
    return tuple(_secrets(settings_cls))


def secret_settings(settings_cls: type[BaseModel]) -> list[str]:
    """Their names as in REAPI_SECRETS_DIR (`secret_key`, `billing__stripe_secret_key`)."""
    return [secret.name for secret in secrets_of(settings_cls)]


def file_variables(settings_cls: type[BaseModel]) -> set[str]:
    """The `REAPI_*_FILE` variable of each secret setting (a table's keys have theirs too:
    `REAPI_PROVIDER_KEYS__OPENAI_FILE`, see `reads_variable`)."""
    return {secret.variable for secret in secrets_of(settings_cls)}


def _target(secrets: tuple[Secret, ...], name: str) -> tuple[Secret, str | None] | None:
    """The secret a lower-case name stands for (`billing__stripe_secret_key`), with the key
    when it names one entry of a table (`provider_keys__openai`)."""
    for secret in secrets:
        if name == secret.name:
            return secret, None
        key = name.removeprefix(secret.name + _NESTED)
        if secret.kind == "mapping" and key != name and key:
            return secret, key
    return None


def _variable_target(
    secrets: tuple[Secret, ...], variable: str
) -> tuple[Secret, str | None] | None:
    upper = variable.upper()
    if not (upper.startswith(PREFIX) and upper.endswith("_FILE")):
        return None
    return _target(secrets, upper.removeprefix(PREFIX).removesuffix("_FILE").lower())


def reads_variable(settings_cls: type[BaseModel], variable: str) -> bool:
    """Whether `variable` is a `REAPI_*_FILE` variable read here."""
    return _variable_target(secrets_of(settings_cls), variable) is not None


def _read(variable: str, path: Path) -> str:
    try:
        return path.read_text().removesuffix("\n").removesuffix("\r")
    except OSError as error:
        reason = error.strerror or type(error).__name__
    raise ConfigError(f"{variable}: cannot read {path} ({reason})")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _value(kind: Kind, variable: str, path: Path) -> str | list[str] | dict[str, str]:
    """A file's value for a secret of this shape. A list is one secret a line (blank lines
    left out: rotating is two lines) or a JSON list; an empty one is refused, as it would
    switch off what the secrets are for (the webhook endpoint) without a word. A table is
    the JSON object its variable takes."""
    text = _read(variable, path)
    if kind == "value":
        return text
    if kind == "mapping":
        table = _json(text)
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(f'{variable}: {path} is not a JSON object ({{"name": "..."}})')
        return table
    as_json = text.lstrip().startswith("[")  # no secret starts so
    lines = _json(text) if as_json else [line.strip() for line in text.splitlines()]
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ConfigError(f'{variable}: {path} is not a JSON list of strings (["...", "..."])')
    found = lines if as_json else [line for line in lines if line]
    if not found:
        raise ConfigError(f"{variable}: {path} holds no secret (one a line, or a JSON list)")
    return found


def _put(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        values = values.setdefault(part, {})
    values[path[-1]] = value


def _require_directory(directory: str) -> None:
    """A directory named but absent or unreadable stops the start: ignored, it left every secret
    it should hold unset without a word (`database_url` then the SQLite file in the data dir,
    S3 without credentials), as after a typo or with systemd credentials not loaded."""
    try:
        os.listdir(directory)
        return
    except OSError as error:
        reason = error.strerror or type(error).__name__
    raise ConfigError(f"{SECRETS_DIR_ENV}: cannot read the directory {directory} ({reason})")


class SecretFiles(PydanticBaseSettingsSource):
    """A settings source of the values held in files (below the environment in precedence).
    Nested values come as nested tables, which pydantic-settings merges into those of the
    sources below (the config file's `[billing]`)."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        secrets = secrets_of(self.settings_cls)
        directory = self.environ.get(SECRETS_DIR_ENV)
        if directory:
            _require_directory(directory)
            for found in sorted(Path(directory).glob("*")):
                target = _target(secrets, found.name.lower())
                if target is not None and found.is_file():
                    self._put(values, target, SECRETS_DIR_ENV, found)
        for variable, path in self.environ.items():
            target = _variable_target(secrets, variable)
            if target is not None:
                self._put(values, target, variable, Path(path))
        return values

    @staticmethod
    def _put(
        values: dict[str, Any], target: tuple[Secret, str | None], variable: str, path: Path
    ) -> None:
        secret, key = target
        if key is None:
            _put(values, secret.path, _value(secret.kind, variable, path))
        else:
            _put(values, (*secret.path, key), _read(variable, path))


class EnvWithoutSecretFiles(EnvSettingsSource):
    """The environment, less the `_FILE` variables `SecretFiles` reads: pydantic-settings took
    `REAPI_PROVIDER_KEYS__OPENAI_FILE` for a provider key `openai_file` (the path as its value)
    and `REAPI_BILLING__STRIPE_SECRET_KEY_FILE` for an unknown setting of billing."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        loaded = super()._load_env_vars()
        return {k: v for k, v in loaded.items() if not reads_variable(self.settings_cls, k)}


def mistyped_secret_files(
    settings_cls: type[BaseSettings], environ: Mapping[str, str]
) -> list[str]:
    """A message for each file of `REAPI_SECRETS_DIR` that no setting reads and whose name is
    close to one that would be read (`secret_kye`), or that names a secret of ours that does not
    exist (`billing__stripe_key`): ignored, it would leave that setting unset without a word.
    Files of other names are left alone (a directory of secrets may hold other services'
    secrets)."""
    directory = environ.get(SECRETS_DIR_ENV)
    if not directory or not Path(directory).is_dir():
        return []
    secrets = secrets_of(settings_cls)
    problems = []
    for found in sorted(Path(directory).glob("*")):
        name = found.name.lower()
        if _target(secrets, name) is None:
            meant = _meant(secrets, name)
            if meant:
                problems.append(
                    f"unknown secret file '{found.name[:80]}' in {SECRETS_DIR_ENV} ({meant})"
                )
    return problems


def _meant(secrets: tuple[Secret, ...], name: str) -> str | None:
    """What a file name no setting reads was likely meant to be, or None when it looks like
    another service's secret."""
    names = [secret.name for secret in secrets]
    close = [c for c in difflib.get_close_matches(name, names, cutoff=0.8) if _typo(name, c)]
    if close:
        return f"did you mean {close[0]}?"
    head, _, key = name.partition(_NESTED)
    tables = [secret.name for secret in secrets if secret.kind == "mapping"]
    close = [c for c in difflib.get_close_matches(head, tables, cutoff=0.8) if _typo(head, c)]
    if key and close:
        return f"did you mean {close[0]}{_NESTED}{key}?"
    inside = [n for n in names if n.startswith(head + _NESTED)]
    if key and inside:  # in the namespace of one of ours (billing__...): a name it lacks
        close = difflib.get_close_matches(name, inside, n=1, cutoff=0.6)
        return f"did you mean {close[0]}?" if close else f"{head} has {', '.join(inside)}"
    return None


def _typo(name: str, setting: str) -> bool:
    """A name a slip of the keyboard away from the setting's: a letter or two more, fewer or
    swapped. One that holds the setting's whole name and more (`secret_key_base`, a web
    framework's; `jwt_secret_key`) is another secret, not a typo of ours."""
    return abs(len(name) - len(setting)) <= 2 and setting not in name
