"""`reapi-server demo`: the gateway in front of reapi's built-in provider simulators.

Only providers that have a simulator are kept in the demo's catalog, so a real provider key in
the environment can never be used by accident: nothing leaves this machine. Sign-in with GitHub
and Google goes to their simulated twins (`reapi_server.testing.identity_fakes`) on loopback,
and billing to the Stripe simulator (`reapi_server.testing.stripe_sim`): a person buys credits
on its checkout page and its signed webhooks credit them, as Stripe's would.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer
from pydantic import SecretStr

from reapi.catalog import Catalog, load_catalog

from . import admin
from .app import create_app
from .billing.settings import BillingSettings, CreditPack
from .billing.webhook import WEBHOOK_PATH
from .config import GitHubApp, GoogleApp, OAuthApps, Settings
from .links import Links
from .serving import run_server

if TYPE_CHECKING:
    from .testing.identity_fakes import IdentityFakes
    from .testing.stripe_sim import StripeSimulator

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PACKS",
    "demo_billing",
    "demo_catalog",
    "demo_poll_interval",
    "demo_sign_in",
    "run_demo",
]

DEMO_EMAIL = "demo@reapi.local"
DEMO_CREDITS = 1_000_000
_DEMO_POLL_INTERVAL = 0.5
#: What the demo sells (on the simulated Stripe).
DEMO_PACKS = (
    CreditPack(id="starter", name="1,000 credits", credits=1_000, unit_amount=1_000),
    CreditPack(id="plus", name="5,000 credits", credits=5_000, unit_amount=4_500),
    CreditPack(id="pro", name="20,000 credits", credits=20_000, unit_amount=16_000),
)


def demo_catalog(
    catalog: Catalog,
    simulated: Mapping[str, str],
    poll_intervals: Mapping[str, float] | None = None,
) -> Catalog:
    """The catalog narrowed to simulated providers (models without such a route dropped),
    each polled as often as its simulator suggests rather than as the real API asks."""
    data: dict[str, Any] = catalog.model_dump(mode="json")
    intervals = poll_intervals or {}
    providers = {
        name: {**spec, "poll_interval": intervals.get(name, spec.get("poll_interval"))}
        for name, spec in data["providers"].items()
        if name in simulated
    }
    models = {}
    for model_id, model in data["models"].items():
        routes = [r for r in model["routes"] if r["provider"] in simulated]
        if routes:
            models[model_id] = {**model, "routes": routes}
    return Catalog.model_validate({"providers": providers, "models": models})


def _banner(
    base: str,
    key: str,
    catalog: Catalog,
    mail_dir: Path,
    sign_in: Mapping[str, str],
    stripe: str,
) -> str:
    images = [m.id for m in catalog.models.values() if m.kind == "image"]
    videos = [m.id for m in catalog.models.values() if m.kind == "video"]
    image_model = "gpt-image-2" if "gpt-image-2" in images else (images[0] if images else "MODEL")
    lines = [
        "",
        "reapi gateway demo: every provider is a local simulator; nothing leaves this machine.",
        f"Gateway: {base}/v1   Models: {', '.join(images + videos)}",
        "",
        f"REAPI_API_KEY={key}",
        "",
        "# openai-python, unchanged:",
        "import base64",
        "from openai import OpenAI",
        f'client = OpenAI(base_url="{base}/v1", api_key="{key}")',
        f'image = client.images.generate(model="{image_model}", prompt="a lighthouse at dusk")',
        'open("lighthouse.png", "wb").write(base64.b64decode(image.data[0].b64_json))',
        "",
        "# curl:",
        f"curl {base}/v1/images/generations \\",
        f'  -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\',
        f"""  -d '{{"model": "{image_model}", "prompt": "a lighthouse at dusk"}}'""",
        "",
        f"Web: sign up at {base}/signup (or sign in at {base}/login).",
        f"Mail (verification and reset links) is written as .eml files to {mail_dir.resolve()}/",
        f"Billing: buy credits at {base}/dashboard/billing once your address is verified. Stripe",
        f'is simulated at {stripe}: press "Pay" on its page (test card 4242 succeeds; 3184',
        "asks for authentication and 0341 is declined when auto top-up charges them later).",
        'GitHub and Google sign-in are simulated here: press "Continue with GitHub" on the',
        "sign-in page and pick a person on the simulated GitHub's page.",
        *(f"  {name:<7} {url}" for name, url in sign_in.items()),
        "",
    ]
    return "\n".join(lines)


def _port_taken(host: str, port: int) -> bool:
    """Whether binding the gateway's address would fail (as uvicorn binds: SO_REUSEADDR)."""
    try:
        socket.create_server((host, port)).close()
    except OSError:
        return True
    return False


def _free_port(host: str) -> int:
    with socket.create_server((host, 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def _simulators() -> ModuleType | None:
    try:
        import reapi.testing
    except ImportError:
        return None
    return reapi.testing


def run_demo(settings: Settings, *, simulator_port: int) -> None:
    chosen = settings.model_fields_set  # what the environment or config file set, before ours
    testing = _simulators()
    if testing is None:
        typer.secho("error: reapi.testing (the provider simulators) is not available", fg="red")
        raise typer.Exit(1)
    # Checked before a key is issued and printed: a banner for a gateway that cannot start
    # would hand out a key for nothing.
    if _port_taken(settings.host, settings.port):
        typer.secho(
            f"error: port {settings.port} on {settings.host} is in use; pick another with "
            f"--port (make demo PORT=...)",
            err=True,
            fg="red",
        )
        raise typer.Exit(1)
    metrics = settings.metrics_address
    if metrics is not None and _port_taken(*metrics) and "metrics_listen" not in chosen:
        # The default port, held by another gateway (a first demo: `make demo PORT=8001` is
        # how the Makefile says to start a second): any free port will do for a demo's metrics.
        settings = settings.with_overrides(metrics_listen=f"{metrics[0]}:{_free_port(metrics[0])}")
        metrics = settings.metrics_address
    if metrics is not None and _port_taken(*metrics):
        typer.secho(
            f"error: the metrics port {metrics[1]} on {metrics[0]} is in use; set "
            f"REAPI_METRICS_LISTEN to another host:port, or to off",
            err=True,
            fg="red",
        )
        raise typer.Exit(1)
    # Only now: the sign-in fakes and the Stripe simulator run on reapi.testing's servers too.
    from .testing.identity_fakes import run_identity_fakes
    from .testing.stripe_sim import StripeSimulator

    default_simulators, run_simulators = testing.default_simulators, testing.run_simulators
    handle = run_simulators(default_simulators(), host="127.0.0.1", base_port=simulator_port)
    try:
        with run_identity_fakes() as fakes, StripeSimulator(account_name=settings.site_name) as sim:
            simulated = dict(handle.provider_urls)
            catalog = demo_catalog(
                load_catalog(settings.catalog_path), simulated, handle.poll_intervals
            )
            settings = settings.with_overrides(
                provider_base_urls=simulated,
                provider_keys={name: SecretStr(handle.api_key) for name in simulated},
                poll_interval=demo_poll_interval(settings),
                oauth=demo_sign_in(fakes),
                billing=demo_billing(sim, settings),
            )
            asyncio.run(admin.ensure_account(settings, DEMO_EMAIL, DEMO_CREDITS))
            issued = asyncio.run(admin.new_key(settings, DEMO_EMAIL, name="demo"))
            base = f"http://{settings.host}:{settings.port}"
            sign_in = {name: fakes.urls[name] for name in ("github", "google")}
            typer.echo(
                _banner(base, issued.plaintext, catalog, settings.mail_dir, sign_in, sim.base_url)
            )
            run_server(settings, create_app(settings, catalog=catalog, migrate=False))
    finally:
        handle.stop()


def demo_poll_interval(settings: Settings) -> float:
    """The first poll of a new video, and the poller's pace: simulators are quick. Later polls
    of a task follow its provider's `poll_interval` (`demo_catalog`: the simulator's)."""
    return min(settings.poll_interval, _DEMO_POLL_INTERVAL)


def demo_billing(sim: StripeSimulator, settings: Settings) -> BillingSettings:
    """Billing on the Stripe simulator, whose webhooks (signed with a secret made now) go to
    this gateway. Never a real Stripe account, whatever the configuration says."""
    secret = "whsec_demo_" + secrets.token_hex(16)
    sim.add_webhook_endpoint(Links.from_settings(settings).page(WEBHOOK_PATH), secret)
    return BillingSettings(
        stripe_secret_key=SecretStr(sim.secret_key),
        stripe_webhook_secrets=[SecretStr(secret)],
        stripe_api_base=sim.base_url,
        packs=list(DEMO_PACKS),
        event_retry_interval=2.0,
        auto_top_up_interval=5.0,
    )


def demo_sign_in(fakes: IdentityFakes) -> OAuthApps:
    """Sign-in with the simulated GitHub and Google: their chooser pages stand in for the
    real providers' consent screens."""
    values = fakes.settings()
    return OAuthApps(
        github=GitHubApp(
            client_id=values["github_client_id"],
            client_secret=SecretStr(values["github_client_secret"]),
            authorize_url=values["github_authorize_url"],
            token_url=values["github_access_token_url"],
            api_base_url=values["github_api_base_url"],
        ),
        google=GoogleApp(
            client_id=values["google_client_id"],
            client_secret=SecretStr(values["google_client_secret"]),
            discovery_url=values["google_metadata_url"],
        ),
    )
