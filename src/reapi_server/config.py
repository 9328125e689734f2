"""Server settings: environment (`REAPI_*`), an optional TOML file, then defaults.

Secrets are `SecretStr` so that a settings object can be printed or logged without leaking them.
Everything the server keeps on disk lives under `data_dir`: the SQLite file and mirrored outputs.
All of it is private (`private`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reapi import UrlPolicy
from reapi.core import SDK_ENV, excerpt

from .billing.settings import BillingSettings
from .config_errors import ConfigError
from .private import PRIVATE_DIR, make_private_dirs, tighten
from .secret_files import (
    SECRETS_DIR_ENV,
    EnvWithoutSecretFiles,
    SecretFiles,
    file_variables,
    reads_variable,
)

__all__ = [
    "CONFIG_ENV",
    "ConfigError",
    "GitHubApp",
    "GoogleApp",
    "OAuthApps",
    "Settings",
    "describe_settings_error",
    "settings_error_lines",
    "unknown_environment",
    "unknown_variables",
]

#: Environment variable naming a TOML config file (the CLI's `--config` sets it too).
CONFIG_ENV = "REAPI_CONFIG"
_PREFIX = "REAPI_"
#: `REAPI_<PROVIDER>_BASE_URL`, read by the core for every provider (`reapi._settings`).
_PROVIDER_URL = re.compile(r"REAPI_[A-Z0-9_]+_BASE_URL")

#: A source an operator adds to the Content-Security-Policy: an https (or wss) origin, maybe
#: with a path or a leading wildcard label; nothing that could end the directive.
_CSP_SOURCE = re.compile(r"(https|wss)://(\*\.)?[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s;,']*)?")
_HTTPS_SCRIPT = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s;,'\"<>]*)?")


class GitHubApp(BaseModel):
    """A GitHub OAuth app ("Sign in with GitHub" shows when both client values are set)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    authorize_url: str = "https://github.com/login/oauth/authorize"
    token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105  (a URL)
    api_base_url: str = "https://api.github.com/"

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


class GoogleApp(BaseModel):
    """A Google OAuth client (OpenID Connect; endpoints and keys come from discovery)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    #: The id_token's expected `iss`; unset: the discovery URL's own prefix (OpenID Connect
    #: Discovery: the issuer is where the document lives).
    issuer: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


class OAuthApps(BaseModel):
    model_config = ConfigDict(extra="forbid")

    github: GitHubApp = Field(default_factory=GitHubApp)
    google: GoogleApp = Field(default_factory=GoogleApp)


def _asyncpg_ssl(url: str) -> str:
    """libpq's `sslmode=require` (in the URL hosted databases hand out) as asyncpg's
    `ssl=require`: passed on as it is, asyncpg's connect() refused it at the first connection
    (an unexpected keyword argument)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    query = dict(parsed.query)
    query["ssl"] = query.pop("sslmode")
    return parsed.set(query=query).render_as_string(hide_password=False)


def _port_parses(url: str) -> bool:
    """Whether the port reads as a number from 0 to 65535, read as SQLAlchemy reads the URL:
    a password may hold `#`, `/` or `?` unencoded, which `urlsplit` takes for the end of the
    address (such a URL worked, and was refused as having a bad port)."""
    from sqlalchemy.engine import make_url  # only here: not every command opens a database

    try:
        port = make_url(url).port
    except ValueError:  # int() of the port; a URL it cannot parse at all is the driver's to say
        return False
    except Exception:
        return True
    return port is None or 0 <= port <= 65535


#: The database URL schemes the gateway has drivers for.
_DATABASE_SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        # A duration of "inf" (or 1e400) would keep rows for ever and print "inf days" in the
        # privacy policy: every number here is finite.
        allow_inf_nan=False,
    )

    data_dir: Path = Path("reapi-data")
    #: Defaults to a SQLite file in `data_dir`; `postgresql+asyncpg://...` for production.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    #: On SIGTERM: seconds to finish the requests in flight (new ones are refused at once) before
    #: they are cut off. Video jobs' leases are handed back either way.
    drain_seconds: float = Field(default=30.0, ge=0)
    #: On SIGTERM, before the drain: seconds of serving as usual while /readyz answers 503 and
    #: every answer closes its connection, so that a proxy takes the instance out of rotation
    #: and drops its kept-alive connections before the drain closes them. 0: drain at once.
    drain_delay_seconds: float = Field(default=0.0, ge=0)
    #: The public address of this gateway, used in output URLs (`response_format=url`). When
    #: unset, URLs are built from the address the gateway listens on (the socket a request
    #: came in on), never from the Host header. Behind a proxy or NAT, set it.
    public_base_url: str | None = None
    #: Proxies whose X-Forwarded-Proto and X-Forwarded-For uvicorn believes (addresses or
    #: CIDRs; `["*"]` trusts anyone). Loopback only by default.
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])

    #: Provider name (as in the catalog) → key. Unset providers fall back to the catalog's env
    #: variables (OPENAI_API_KEY, ...), exactly as the SDK does.
    provider_keys: dict[str, SecretStr] = Field(default_factory=dict)
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    #: An operator catalog overlaid on the packaged one (TOML or JSON).
    catalog_path: Path | None = None

    #: The fleet's secret: keys idempotency fingerprints and every other keyed hash. When not
    #: given, the first instance generates one into the database (`fleet_secret`).
    secret_key: SecretStr | None = None

    # -- the fleet (several instances) ---------------------------------------------------------
    #: Redis (`redis://`, `rediss://` for TLS), shared by every instance: rate limits that hold
    #: across the fleet, shared circuit breakers, wake-ups. Unset: each process on its own.
    redis_url: SecretStr | None = None
    #: Prefixed to every key and channel, so that deployments can share one Redis.
    redis_key_prefix: str = "reapi:"
    #: Seconds for one Redis call; past it Redis counts as down and the process falls back.
    redis_timeout: float = Field(default=0.25, gt=0)

    # -- limits --------------------------------------------------------------------------------
    #: Per API key (a key's own setting wins); with Redis for the whole fleet, else per process.
    requests_per_minute: int = 600
    #: Per account, all its keys together; 0: no account-wide limit.
    account_requests_per_minute: int = Field(default=0, ge=0)
    max_concurrent_videos: int = 8
    #: Largest request body accepted (multipart uploads included), in bytes.
    max_body_bytes: int = 64 * 1024 * 1024
    #: Largest request line or header line, and largest request head in all (request line and
    #: headers), in bytes: a request over either is answered 431 before more of it is read.
    max_header_line_bytes: int = Field(default=16 * 1024, ge=1024)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Seconds a request head may take to arrive (a new connection's first, and each later one
    #: from its first byte): past them it is answered 408 and its connection closed.
    header_timeout: float = Field(default=30.0, gt=0, le=3600)
    #: Seconds a request body may take after its head, plus one for every
    #: `body_min_bytes_per_second` bytes of it that arrived: past them it is answered 408 and its
    #: connection closed (a body has to keep coming; a large upload on a slow line still passes).
    body_timeout: float = Field(default=30.0, gt=0, le=3600)
    body_min_bytes_per_second: int = Field(default=500, ge=1)

    # -- caller URLs (reference images, source videos) ------------------------------------------
    #: The gateway downloads every URL a caller hands it, public addresses only (SSRF checks on
    #: every redirect hop). CIDRs listed here may be fetched although they are not public, e.g.
    #: `["10.20.0.0/16"]` for an asset host on your own network. Empty by default: keep it so.
    fetch_allow_networks: list[str] = Field(default_factory=list)
    fetch_max_image_bytes: int = 20 * 1024 * 1024
    fetch_max_video_bytes: int = 100 * 1024 * 1024
    #: What every input one request fetches (URLs, file ids) may add up to.
    fetch_max_request_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    #: Seconds for one download, redirects included.
    fetch_timeout: float = 60.0

    # -- webhooks and video events -------------------------------------------------------------
    #: Webhooks go to public addresses only (the caller-URL rules, checked when the URL is
    #: given and again at every attempt). CIDRs listed here may receive them although they are
    #: not public (a receiver on your own network). Empty by default: keep it so.
    webhook_allow_networks: list[str] = Field(default_factory=list)
    #: Seconds for one delivery attempt (connection, request and answer).
    webhook_timeout: float = Field(default=15.0, gt=0)
    #: Seconds between a failed attempt and the next, in turn (the last repeats), each with
    #: up to a fifth of jitter either way; a Retry-After from the receiver is honoured if longer.
    #: The default is the schedule the Standard Webhooks specification gives as its example.
    webhook_retry_delays: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18e3, 36e3, 50.4e3, 72e3, 86.4e3],
        min_length=1,
    )
    #: Seconds after the first attempt within which a delivery is tried; the last attempt
    #: falls at its end.
    webhook_retry_window: float = Field(default=24 * 3600.0, gt=0)
    #: How often each process looks for deliveries due (one finished here is sent at once).
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    #: After a key's signing secret is rotated, the previous one signs too for this long.
    webhook_secret_overlap_seconds: float = Field(default=24 * 3600.0, ge=0)
    #: Deliveries (sent or not) are deleted this long after they were made (or after
    #: `retention_days`, when that is shorter).
    webhook_retention_days: float = Field(default=7.0, gt=0)
    #: GET /v1/videos/{id}/events: a comment line this often keeps proxies from closing an
    #: idle stream; a stream ends after `video_events_max_seconds` (the client reconnects with
    #: Last-Event-ID); the job is read again this often for changes made by other processes.
    video_events_heartbeat_seconds: float = Field(default=15.0, gt=0)
    video_events_max_seconds: float = Field(default=600.0, gt=0)
    video_events_reread_seconds: float = Field(default=2.0, gt=0)
    #: Event streams one key may hold open in one process; more answer 429.
    video_events_max_streams: int = Field(default=64, ge=1)

    # -- upstream deadlines ----------------------------------------------------------------------
    first_byte_timeout: float | None = None
    #: The HTTP client for provider calls: plain HTTP/1.1 on asyncio and httptools (`h1`, a
    #: third of aiohttp's CPU per call), aiohttp (several times less CPU per call than httpx),
    #: or the SDK's httpx client (which honours HTTPS_PROXY).
    upstream_client: Literal["aiohttp", "h1", "httpx"] = "h1"
    #: Active health probes: each provider route with traffic (or an open breaker) gets a cheap
    #: authenticated read every `health_probe_interval` seconds (never a caller's data); two in a
    #: row with no answer within `health_probe_timeout`, or a 5xx, open its breaker. Each process
    #: probes on its own (with background tasks on). Off: breakers learn from traffic alone.
    health_probes: bool = True
    health_probe_interval: float = Field(default=5.0, gt=0)
    health_probe_timeout: float = Field(default=2.0, gt=0)
    #: Hedging, where the extra upstream cost is accepted: model ids and route keys
    #: (`provider/upstream_model`) whose image requests start the next route as well once the
    #: route tried has taken longer than `hedge_quantile` of its recent successes (never sooner
    #: than `hedge_floor_seconds`, and not before `hedge_min_samples` successes were seen). The
    #: first answer wins; the other attempt is cancelled, and only one result is charged.
    hedge_models: list[str] = Field(default_factory=list)
    hedge_quantile: float = Field(default=0.95, gt=0, le=1)
    hedge_floor_seconds: float = Field(default=1.0, ge=0)
    hedge_min_samples: int = Field(default=20, ge=1)

    # -- jobs and reservations -------------------------------------------------------------------
    run_background_tasks: bool = True
    poll_interval: float = 2.0
    max_poll_backoff: float = 60.0
    #: How long a worker owns a video job it is polling before another may take it over.
    job_lease_seconds: float = 120.0
    #: A video job not finished this long after it was created fails (`deadline_exceeded`):
    #: its task is cancelled upstream and its hold released.
    video_job_deadline_seconds: float = Field(default=2 * 3600.0, gt=0)
    #: Memory for request bodies of video jobs, kept per process for their one resubmission
    #: to another route (never longer than the job deadline); the oldest go first.
    video_memory_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    #: An image request's credit hold is released by the sweeper after this long: its process
    #: must have died (image requests finish well within it).
    image_hold_seconds: float = 900.0
    sweep_interval: float = 30.0
    #: How often the SQLite WAL is copied back into the database file and restarted (off the
    #: event loop), besides whenever it has grown past its bound (`wal_bound`).
    checkpoint_interval: float = 1.0
    #: After an operation failed because the database was unavailable (a full disk, a lost
    #: connection), /readyz answers 503 for this long, and requests are told to retry after it.
    database_error_unready_seconds: float = Field(default=10.0, ge=0)
    #: PostgreSQL: seconds for a connection to open and for each statement. A server that no
    #: longer answers (a partition) then fails requests with 503 instead of holding them.
    database_timeout: float = Field(default=10.0, gt=0)
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
    #: Audit-log rows (what operators did) are deleted this long after they were written. A
    #: deleted person's rows lose whom they were about at once (`audit.detach`).
    audit_retention_days: float = Field(default=365.0, gt=0)
    #: How often each server process runs the retention job.
    retention_interval: float = Field(default=600.0, gt=0)
    #: A temp file or multipart upload of an output untouched this long was left by a process
    #: that died mid-write; the retention job removes it. Keep it well above the longest output
    #: download (the router's download deadline: 300 s).
    abandoned_write_seconds: float = Field(default=3600.0, gt=0)

    # -- people: sign-up, sessions, mail, the web pages --------------------------------------------
    #: The name shown on the web pages and in mail.
    site_name: str = "reapi"
    #: Where mail goes. `file`: each message is an RFC 5322 .eml file under `data_dir/mail`
    #: (the demo's default; read them with any mail client). `resend`: Resend's API.
    email_backend: Literal["file", "resend"] = "file"
    #: Resend: an API key with sending access, the API's address, how long a send may take
    #: (under the outbox's 120 s lease), and the sends per second of each process.
    resend_api_key: SecretStr | None = None
    resend_base_url: str = "https://api.resend.com"
    resend_timeout: float = Field(default=30.0, gt=0, le=100)
    resend_requests_per_second: float = Field(default=2.0, ge=0)
    #: The From address of every message.
    email_from: str = "reapi <no-reply@localhost>"
    #: How often each server process looks for mail to send (seconds).
    email_send_interval: float = Field(default=1.0, gt=0)
    #: How often each server process reads the low-balance alerts afresh and mails crossings
    #: no request saw (a balance an operator took down); requests see theirs at once.
    alert_interval: float = Field(default=30.0, gt=0)
    #: The newsletter at sign-up: `opt_in` (an unticked box), `opt_out` (a ticked box; not
    #: valid consent in the EU) or `off` (no newsletter: no box, no setting, nothing sent).
    newsletter_default: Literal["opt_in", "opt_out", "off"] = "opt_in"
    #: A mailbox for `mailto:` unsubscribes in List-Unsubscribe (its mail is yours to act on,
    #: e.g. with `reapi-server notify unsubscribe`); unset: the https link only.
    newsletter_unsubscribe_mailto: str | None = None
    #: Web sessions end after this many days unused, and after `session_max_days` in any case.
    session_idle_days: float = Field(default=7.0, gt=0)
    session_max_days: float = Field(default=30.0, gt=0)
    #: A directory whose `privacy.md` and `terms.md` replace the packaged policies (each file
    #: starts with a `version:` line; see docs/accounts.md).
    legal_dir: Path | None = None
    #: Who runs this installation and how to reach them, as the legal pages say.
    operator_name: str = "the operator of this service"
    operator_contact: str | None = None
    #: Sign-in with GitHub and Google (`[oauth.github]`, `[oauth.google]` in TOML;
    #: `REAPI_OAUTH__GITHUB__CLIENT_ID`, ...). See docs/accounts.md for creating the apps.
    oauth: OAuthApps = Field(default_factory=OAuthApps)
    #: Cloudflare Turnstile on the sign-up and password reset forms, when both keys are set.
    turnstile_site_key: str | None = None
    turnstile_secret_key: SecretStr | None = None
    turnstile_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    #: A chat-support widget: the operator's script, loaded on every page (external, never
    #: inline), and the sources it needs beyond its own origin (CSP). Named, with the cookies
    #: it sets, on the cookie policy.
    chat_widget_script_url: str | None = None
    chat_widget_csp_sources: list[str] = Field(default_factory=list)
    chat_widget_name: str = "the chat-support provider"
    chat_widget_cookies: list[str] = Field(default_factory=list)
    #: The operator's postal address, shown on /contact (some jurisdictions require one).
    operator_address: str | None = None
    #: Where the site's "Docs" links go.
    docs_url: str = "https://reapi.dev/docs"

    # -- billing ---------------------------------------------------------------------------------
    #: Credit packs sold through Stripe Checkout, and the Stripe account behind them
    #: (`[billing]` in TOML; `REAPI_BILLING__STRIPE_SECRET_KEY`, ...). See docs/billing.md.
    billing: BillingSettings = Field(default_factory=BillingSettings)

    # -- logging, metrics, docs ------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True
    #: `host:port` of the listener that serves /metrics (Prometheus); `off` for none. Keep it
    #: on loopback or a private network: metrics show credit totals and providers.
    metrics_listen: str | None = "127.0.0.1:9464"
    #: When set, the main listener serves /metrics too, to `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = None
    #: Serve the OpenAPI document and its pages (/openapi.json, /docs).
    openapi_docs: bool = True

    # -- tracing (OpenTelemetry; the `otel` extra) -------------------------------------------------
    #: A trace span for each /v1 request, with its upstream attempts, storage and database calls
    #: (metadata only), sent to an OTLP/HTTP collector. Off: no OpenTelemetry module is imported.
    tracing: bool = False
    #: The collector's OTLP/HTTP address: a base (`http://collector:4318`, to which `/v1/traces`
    #: is added) or the full traces URL. Unset: OpenTelemetry's own variables
    #: (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT), else localhost:4318.
    tracing_endpoint: str | None = None
    #: The share of requests traced, 0 to 1 (a trusted incoming traceparent decides for its own).
    tracing_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    #: The spans' `service.name`; unset: OTEL_SERVICE_NAME, else `reapi-gateway`.
    tracing_service_name: str | None = None
    #: Continue the trace of an incoming W3C `traceparent` header. Off by default: the header is
    #: the caller's to write, and would let any client choose trace ids and sampling.
    tracing_trust_traceparent: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_environment(cls, data: Any) -> Any:
        unknown = unknown_environment(os.environ)
        if unknown:
            raise ValueError(unknown)
        return data

    @model_validator(mode="after")
    def _storage_is_complete(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("storage_backend = s3 needs s3_bucket (REAPI_S3_BUCKET)")
        return self

    @model_validator(mode="after")
    def _resend_is_complete(self) -> Settings:
        if self.email_backend != "resend":
            return self
        if self.resend_api_key is None:
            raise ValueError("email_backend = resend needs resend_api_key (REAPI_RESEND_API_KEY)")
        if not self.public_base_url:
            # Links in mail are built from it; without it they would point at 127.0.0.1.
            raise ValueError("email_backend = resend needs public_base_url (links in mail)")
        if self.email_from.rstrip("> ").endswith("@localhost"):
            raise ValueError("email_backend = resend needs email_from at your sending domain")
        return self

    @model_validator(mode="after")
    def _live_billing_has_an_address(self) -> Settings:
        if self.billing.live and not self.public_base_url:
            # Checkout sends buyers back there; without it they would land on 127.0.0.1.
            raise ValueError("billing with a live Stripe key needs public_base_url")
        return self

    @model_validator(mode="after")
    def _header_limits_agree(self) -> Settings:
        if self.max_header_line_bytes > self.max_header_bytes:
            raise ValueError("max_header_line_bytes cannot exceed max_header_bytes")
        return self

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off"):
            return None
        host, sep, port = value.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isascii() or not port.isdigit():
            raise ValueError("metrics_listen is host:port (or off)")
        if not 0 < int(port) < 65536:
            raise ValueError("metrics_listen: the port is 1 to 65535")
        return f"{host}:{int(port)}" if ":" not in host else f"[{host}]:{int(port)}"

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> Settings:
        address = self.metrics_address
        if address is not None and address[1] == self.port:
            raise ValueError("metrics_listen needs a port of its own (not the gateway's port)")
        return self

    @model_validator(mode="after")
    def _turnstile_is_complete(self) -> Settings:
        if (self.turnstile_site_key is None) != (self.turnstile_secret_key is None):
            raise ValueError("Turnstile needs both turnstile_site_key and turnstile_secret_key")
        return self

    @field_validator("chat_widget_script_url")
    @classmethod
    def _chat_script(cls, url: str | None) -> str | None:
        if url is not None and not _HTTPS_SCRIPT.fullmatch(url):
            raise ValueError("chat_widget_script_url must be an https URL")
        return url

    @field_validator("chat_widget_csp_sources")
    @classmethod
    def _csp_sources(cls, sources: list[str]) -> list[str]:
        for source in sources:
            if not _CSP_SOURCE.fullmatch(source):
                raise ValueError(f"not a CSP source (https:// or wss:// origin): {source[:80]!r}")
        return sources

    @field_validator("tracing_endpoint")
    @classmethod
    def _tracing_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("tracing_endpoint is an http:// or https:// URL")
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        """The two drivers the gateway runs on. `postgres://` and `postgresql://` (what hosted
        databases hand out) mean asyncpg; anything else is refused here, naming the scheme
        only (the URL may hold a password), not as a traceback of SQLAlchemy's plugin loader."""
        if url is None:
            return None
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if scheme in ("postgres", "postgresql"):
            scheme, url = "postgresql+asyncpg", f"postgresql+asyncpg://{rest}"
        if sep and scheme in _DATABASE_SCHEMES:
            if not _port_parses(url):  # a traceback of SQLAlchemy's otherwise
                raise ValueError("database_url: its port is not a number from 0 to 65535")
            return _asyncpg_ssl(url) if scheme == "postgresql+asyncpg" else url
        given = f" ('{excerpt(scheme)}://' is not one)" if sep else " (no scheme given)"
        raise ValueError(
            "database_url is postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path" + given
        )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        scheme, sep, _ = url.get_secret_value().strip().partition("://")
        if not sep or scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis_url is redis://host:6379/0 (rediss:// for TLS, or unix://)")
        return url

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, secret: SecretStr | None) -> SecretStr | None:
        # An empty file (REAPI_SECRET_KEY_FILE, a secrets directory) would key every hash of
        # the fleet with nothing at all: anyone could compute them.
        if secret is not None and not secret.get_secret_value().strip():
            raise ValueError(
                "secret_key is empty (an empty secret file?): give 32 random bytes, hex"
                " (`openssl rand -hex 32`)"
            )
        return secret

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint_url(cls, url: str | None) -> str | None:
        # boto3 refuses one without a scheme only when the first client is made (a traceback)
        # or takes `host:port` as a scheme of that name (every storage call then fails).
        if url is None:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "s3_endpoint_url is an http:// or https:// URL"
                " (https://<account id>.r2.cloudflarestorage.com, http://minio:9000)"
            )
        return url.strip()

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "public_base_url is an http:// or https:// URL (https://api.example.com)"
            )
        return url.strip()

    @field_validator("fetch_allow_networks", "webhook_allow_networks")
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
        # Then values from files (`secret_files`), then the config file; the environment
        # without the `_FILE` variables (read as files, not as values of their own).
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            EnvWithoutSecretFiles(settings_cls),
            SecretFiles(settings_cls),
        ]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            if not Path(config_file).is_file():  # a mistyped path must not mean "defaults"
                raise FileNotFoundError(2, "no such file", config_file)
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    # -- derived values ----------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'reapi.db').resolve()}"

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) of the metrics listener, or None when it is off."""
        if self.metrics_listen is None:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.removeprefix("[").removesuffix("]"), int(port)

    @property
    def tracing_traces_url(self) -> str | None:
        """Where spans are posted: `tracing_endpoint` with `/v1/traces` added to a bare base
        (as OpenTelemetry does with OTEL_EXPORTER_OTLP_ENDPOINT); None: the exporter's own
        variables decide."""
        if self.tracing_endpoint is None:
            return None
        if urlsplit(self.tracing_endpoint).path.strip("/"):
            return self.tracing_endpoint
        return self.tracing_endpoint.rstrip("/") + "/v1/traces"

    @property
    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(
            allow_networks=tuple(self.fetch_allow_networks),
            max_image_bytes=self.fetch_max_image_bytes,
            max_video_bytes=self.fetch_max_video_bytes,
            timeout=self.fetch_timeout,
        )

    @property
    def webhook_url_policy(self) -> UrlPolicy:
        """Where webhooks may go: public addresses, or the networks allowed for them (not those
        allowed for fetches: an asset host is no webhook receiver)."""
        return UrlPolicy(
            allow_networks=tuple(self.webhook_allow_networks), timeout=self.webhook_timeout
        )

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def mail_dir(self) -> Path:
        """Where the file mail backend writes."""
        return self.data_dir / "mail"

    def ensure_data_dir(self) -> None:
        """The data dir, private (0700): made so, or tightened when an earlier version left it
        readable by others."""
        make_private_dirs(self.data_dir)
        tighten(self.data_dir, PRIVATE_DIR)

    @property
    def database_in_data_dir(self) -> bool:
        """The database is a SQLite file under `data_dir` (the default one, or a URL naming a
        file there): SQLite cannot create it unless the directory exists."""
        if self.database_url is None:
            return True
        from sqlalchemy.engine import make_url  # only here: not every command opens a database

        parsed = make_url(self.database_url)
        path = parsed.database or ""
        if not parsed.drivername.startswith("sqlite") or path in ("", ":memory:"):
            return False
        return Path(path.removeprefix("file:")).resolve().is_relative_to(self.data_dir.resolve())

    @property
    def writes_data_dir(self) -> bool:
        """Whether anything is kept under `data_dir`: the SQLite database, outputs on local
        disk, mail as files. A gateway on PostgreSQL, S3 and Resend keeps nothing there."""
        return (
            self.database_in_data_dir
            or self.storage_backend == "local"
            or self.email_backend == "file"
        )

    def ensure_database_dir(self) -> None:
        """The data dir, made only when the database lives in it: an administration command
        that touches only the database leaves no empty `./reapi-data` beside a PostgreSQL
        fleet."""
        if self.database_in_data_dir:
            self.ensure_data_dir()

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with CLI flags applied (None means "not given")."""
        copy = self.model_copy()
        for name, value in changes.items():
            if value is not None:  # validated as the environment's values are
                self.__pydantic_validator__.validate_assignment(copy, name, value)
        return copy


def _suggestion(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A message for each `REAPI_*` variable that no setting reads (a typo would otherwise be
    ignored silently), with the nearest known name when one is close."""
    known = [_PREFIX + name.upper() for name in Settings.model_fields]
    files = sorted(file_variables(Settings))
    allowed = {*known, *SDK_ENV, CONFIG_ENV, SECRETS_DIR_ENV, *files}
    found = []
    for variable in sorted(environ):
        name = variable.upper()
        if not name.startswith(_PREFIX) or name in allowed or _PROVIDER_URL.fullmatch(name):
            continue
        if reads_variable(Settings, name):  # a table's entry: REAPI_PROVIDER_KEYS__OPENAI_FILE
            continue
        # A nested value (REAPI_BILLING__PACKS; the model names what it lacks), but not a
        # `_FILE` of no secret (REAPI_BILLING__STRIPE_SECRT_KEY_FILE): nothing would read it.
        if name.partition("__")[0] in known and not name.endswith("_FILE"):
            continue
        suggestion = _suggestion(name, [*known, *files] if name.endswith("_FILE") else known)
        found.append(f"unknown environment variable {excerpt(variable)}{suggestion}")
    return found


def unknown_environment(environ: Mapping[str, str]) -> str | None:
    """The first of `unknown_variables`, or None when there is none."""
    found = unknown_variables(environ)
    return found[0] if found else None


def settings_error_lines(error: ValidationError) -> list[str]:
    """One line per problem of invalid settings: where it is and what is wrong, never the
    value given (it may be a secret)."""
    known = list(Settings.model_fields)
    problems = []
    for item in error.errors(include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{excerpt(where)}'{_suggestion(where, known)}")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            named = not where or message.startswith(where)  # the validator's words name it
            problems.append(message if named else f"{where}: {message}")
    return problems


def describe_settings_error(error: ValidationError) -> str:
    """One line for invalid settings (the first three problems)."""
    return "invalid settings: " + "; ".join(settings_error_lines(error)[:3])
