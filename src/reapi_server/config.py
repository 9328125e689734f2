"""Server settings: environment (`REAPI_*`), an optional TOML file, then defaults.

Secrets are `SecretStr` so that a settings object can be printed or logged without leaking them.
Everything the server keeps on disk lives under `data_dir`: the SQLite file, mirrored outputs and
the generated secret used to fingerprint idempotent requests.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reapi import UrlPolicy

__all__ = ["CONFIG_ENV", "Settings"]

#: Environment variable naming a TOML config file (the CLI's `--config` sets it too).
CONFIG_ENV = "REAPI_CONFIG"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REAPI_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Path("reapi-data")
    #: Defaults to a SQLite file in `data_dir`; `postgresql+asyncpg://...` for production.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    #: The public address of this gateway, used in output URLs (`response_format=url`). When
    #: unset, URLs are built from the address each request came in on.
    public_base_url: str | None = None

    #: Provider name (as in the catalog) → key. Unset providers fall back to the catalog's env
    #: variables (OPENAI_API_KEY, ...), exactly as the SDK does.
    provider_keys: dict[str, SecretStr] = Field(default_factory=dict)
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    #: An operator catalog overlaid on the packaged one (TOML or JSON).
    catalog_path: Path | None = None

    #: Keys idempotency fingerprints; generated into `data_dir` when not given.
    secret_key: SecretStr | None = None

    # -- limits --------------------------------------------------------------------------------
    requests_per_minute: int = 600
    max_concurrent_videos: int = 8
    #: Largest request body accepted (multipart uploads included), in bytes.
    max_body_bytes: int = 64 * 1024 * 1024

    # -- caller URLs (reference images, source videos) ------------------------------------------
    #: The gateway downloads every URL a caller hands it, public addresses only (SSRF checks on
    #: every redirect hop). CIDRs listed here may be fetched although they are not public, e.g.
    #: `["10.20.0.0/16"]` for an asset host on your own network. Empty by default: keep it so.
    fetch_allow_networks: list[str] = Field(default_factory=list)
    fetch_max_image_bytes: int = 20 * 1024 * 1024
    fetch_max_video_bytes: int = 100 * 1024 * 1024
    #: Seconds for one download, redirects included.
    fetch_timeout: float = 60.0

    # -- upstream deadlines ----------------------------------------------------------------------
    first_byte_timeout: float | None = None
    #: The HTTP client for provider calls: aiohttp (several times less CPU per call) or the
    #: SDK's httpx client.
    upstream_client: Literal["aiohttp", "httpx"] = "aiohttp"

    # -- jobs and reservations -------------------------------------------------------------------
    run_background_tasks: bool = True
    poll_interval: float = 2.0
    max_poll_backoff: float = 60.0
    #: How long a worker owns a video job it is polling before another may take it over.
    job_lease_seconds: float = 120.0
    #: An image request's credit hold is released by the sweeper after this long: its process
    #: must have died (image requests finish well within it).
    image_hold_seconds: float = 900.0
    sweep_interval: float = 30.0
    #: How often the SQLite WAL is copied back into the database file (off the event loop).
    checkpoint_interval: float = 1.0
    idempotency_ttl_seconds: float = 24 * 3600

    # -- output storage --------------------------------------------------------------------------
    #: `local`: files under `data_dir/outputs`, served by the gateway. `s3`: any S3-compatible
    #: store (Cloudflare R2, AWS S3, MinIO) through boto3.
    storage_backend: Literal["local", "s3"] = "local"
    #: R2: `https://<account id>.r2.cloudflarestorage.com`; MinIO: its address; AWS: unset.
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    #: R2: `auto`; AWS: the bucket's region; unset: boto3's own lookup (AWS_REGION, ...).
    s3_region: str | None = None
    #: Unset: boto3's own credential chain (environment, instance role, ...).
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    #: `path` for MinIO and other stores without per-bucket host names.
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    #: When set (an R2 custom domain, a CDN), output URLs redirect to `<this>/<key>`.
    s3_public_base_url: str | None = None
    #: When above 0 (and no public URL), output URLs redirect to presigned URLs this long-lived;
    #: 0: the gateway streams objects itself.
    s3_presign_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    #: Multipart part size for large outputs: about the most memory one upload holds.
    storage_part_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    #: Extra tries of a failed storage call (with exponential backoff) before giving up.
    storage_retries: int = Field(default=3, ge=0, le=10)
    storage_timeout: float = Field(default=30.0, gt=0)

    # -- retention ------------------------------------------------------------------------------
    #: Usage rows, video jobs and mirrored outputs older than this are deleted.
    retention_days: float = Field(default=30.0, gt=0)
    #: Payment records are kept this long (7 years, with the leap days, as tax and accounting
    #: law asks), also after their account is deleted; then the retention job deletes them.
    payment_retention_days: float = Field(default=7 * 365 + 2, gt=0)
    #: How often each server process runs the retention job.
    retention_interval: float = Field(default=600.0, gt=0)

    # -- people: sign-up, sessions, mail, the web pages --------------------------------------------
    #: The name shown on the web pages and in mail.
    site_name: str = "reapi"
    #: Where mail goes. `file`: each message is an RFC 5322 .eml file under `data_dir/mail`
    #: (the demo's default; read them with any mail client).
    email_backend: Literal["file"] = "file"
    #: The From address of every message.
    email_from: str = "reapi <no-reply@localhost>"
    #: How often each server process looks for mail to send (seconds).
    email_send_interval: float = Field(default=1.0, gt=0)
    #: Web sessions end after this many days unused, and after `session_max_days` in any case.
    session_idle_days: float = Field(default=7.0, gt=0)
    session_max_days: float = Field(default=30.0, gt=0)
    #: A directory whose `privacy.md` and `terms.md` replace the packaged policies (each file
    #: starts with a `version:` line; see docs/accounts.md).
    legal_dir: Path | None = None
    #: Who runs this installation and how to reach them, as the legal pages say.
    operator_name: str = "the operator of this service"
    operator_contact: str | None = None

    # -- logging ----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _storage_is_complete(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("storage_backend = s3 needs s3_bucket (REAPI_S3_BUCKET)")
        return self

    @field_validator("fetch_allow_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        UrlPolicy(allow_networks=tuple(networks))  # a bad CIDR fails at start, not per request
        return networks

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    # -- derived values ----------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'reapi.db').resolve()}"

    @property
    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(
            allow_networks=tuple(self.fetch_allow_networks),
            max_image_bytes=self.fetch_max_image_bytes,
            max_video_bytes=self.fetch_max_video_bytes,
            timeout=self.fetch_timeout,
        )

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def mail_dir(self) -> Path:
        """Where the file mail backend writes."""
        return self.data_dir / "mail"

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def fingerprint_secret(self) -> bytes:
        """The configured secret, or one generated once and kept (mode 0600) in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        self.ensure_data_dir()
        path = self.data_dir / "secret.key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        value = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker wrote it first
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
        return value

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with CLI flags applied (None means "not given")."""
        given = {k: v for k, v in changes.items() if v is not None}
        return self.model_copy(update=given)
