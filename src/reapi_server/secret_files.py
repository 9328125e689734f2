"""Secrets from files, for every secret setting: what container and service managers hand a
process (Docker and Compose secrets under /run/secrets, systemd's LoadCredential=), so that
secrets need not sit in the environment or the config file.

- `REAPI_<NAME>_FILE=/path`: the file holds the value of `REAPI_<NAME>` (e.g.
  `REAPI_SECRET_KEY_FILE`, `REAPI_PROVIDER_KEYS__OPENAI_FILE`);
- `REAPI_SECRETS_DIR=/run/secrets`: a file there named like the variable without `REAPI_`, in
  lower case (`secret_key`, `provider_keys__openai`), holds its value. The directory must
  exist and be readable.

A value given directly (environment, command line) wins over a file. A trailing newline is not
part of the value. A file named but unreadable stops the start (`ConfigError`), naming the
variable and the path, never the contents.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .config_errors import ConfigError

__all__ = [
    "SECRETS_DIR_ENV",
    "SecretFiles",
    "file_variables",
    "mistyped_secret_files",
    "secret_settings",
]

PREFIX = "REAPI_"
SECRETS_DIR_ENV = "REAPI_SECRETS_DIR"
#: Not a SecretStr (a URL), but it holds the database's password.
_ALSO_SECRET = ("database_url",)
_NESTED_FILE = re.compile(r"REAPI_([A-Z0-9_]+?)__([A-Z0-9_]+)_FILE")


def _holds_secrets(field: FieldInfo) -> bool:
    annotation = field.annotation
    seen = [annotation]
    while seen:
        current = seen.pop()
        if current is SecretStr:
            return True
        seen.extend(get_args(current))
    return False


def secret_settings(settings_cls: type[BaseSettings]) -> list[str]:
    """The names of the settings that may hold a secret (and so may come from a file)."""
    return [
        name
        for name, field in settings_cls.model_fields.items()
        if _holds_secrets(field) or name in _ALSO_SECRET
    ]


def file_variables(settings_cls: type[BaseSettings]) -> set[str]:
    """The `REAPI_*_FILE` variables of the flat secret settings (for unknown-name checks)."""
    return {f"{PREFIX}{name.upper()}_FILE" for name in secret_settings(settings_cls)}


def _read(variable: str, path: Path) -> str:
    try:
        return path.read_text().removesuffix("\n").removesuffix("\r")
    except OSError as error:
        reason = error.strerror or type(error).__name__
    raise ConfigError(f"{variable}: cannot read {path} ({reason})")


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
    """A settings source of the values held in files (below the environment in precedence)."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        directory = self.environ.get(SECRETS_DIR_ENV)
        names = secret_settings(self.settings_cls)
        nested = [n for n in names if n not in _ALSO_SECRET and self._is_mapping(n)]
        if directory:
            _require_directory(directory)
            for found in sorted(Path(directory).glob("*")):
                name, _, key = found.name.lower().partition("__")
                if name in nested and key:
                    values.setdefault(name, {})[key] = _read(SECRETS_DIR_ENV, found)
                elif name in names and not key and found.is_file():
                    values[name] = _read(SECRETS_DIR_ENV, found)
        for variable, path in self.environ.items():
            upper = variable.upper()
            if not upper.startswith(PREFIX) or not upper.endswith("_FILE"):
                continue
            name = upper.removeprefix(PREFIX).removesuffix("_FILE").lower()
            if name in names:
                values[name] = _read(variable, Path(path))
                continue
            match = _NESTED_FILE.fullmatch(upper)
            if match and match.group(1).lower() in nested:
                key = match.group(2).lower()
                values.setdefault(match.group(1).lower(), {})[key] = _read(variable, Path(path))
        return values

    def _is_mapping(self, name: str) -> bool:
        annotation = self.settings_cls.model_fields[name].annotation
        return getattr(annotation, "__origin__", None) is dict


def mistyped_secret_files(
    settings_cls: type[BaseSettings], environ: Mapping[str, str]
) -> list[str]:
    """A message for each file of `REAPI_SECRETS_DIR` that no setting reads and whose name is
    close to one that would be read (`secret_kye`): ignored, it would leave that setting unset
    without a word. Files of other names are left alone (a directory of secrets may hold other
    services' secrets)."""
    directory = environ.get(SECRETS_DIR_ENV)
    if not directory or not Path(directory).is_dir():
        return []
    names = secret_settings(settings_cls)
    source = SecretFiles(settings_cls, {SECRETS_DIR_ENV: directory})
    nested = [n for n in names if n not in _ALSO_SECRET and source._is_mapping(n)]
    problems = []
    for found in sorted(Path(directory).glob("*")):
        name, _, key = found.name.lower().partition("__")
        if (name in nested and key) or (name in names and not key):
            continue
        close = [c for c in difflib.get_close_matches(name, names, cutoff=0.8) if _typo(name, c)]
        if close:
            meant = f"{close[0]}__{key}" if key and close[0] in nested else close[0]
            problems.append(
                f"unknown secret file '{found.name[:80]}' in {SECRETS_DIR_ENV} "
                f"(did you mean {meant}?)"
            )
    return problems


def _typo(name: str, setting: str) -> bool:
    """A name a slip of the keyboard away from the setting's: a letter or two more, fewer or
    swapped. One that holds the setting's whole name and more (`secret_key_base`, a web
    framework's; `jwt_secret_key`) is another secret, not a typo of ours."""
    return abs(len(name) - len(setting)) <= 2 and setting not in name
