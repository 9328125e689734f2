"""`python -m reapi_server.testing.stripe_sim --port 12111 --webhook URL --webhook-secret whsec_...`

Runs the simulator until Ctrl-C or SIGTERM. It prints one line when it listens:
`stripe simulator: <base url> key=<secret key>` (then one `webhook: <url>` line per endpoint).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from ._simulator import DEFAULT_SECRET_KEY, StripeSimulator
from ._webhooks import DEFAULT_RETRY_DELAYS, WebhookEndpoint


def _delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated seconds, e.g. 1,2,4,8") from None
    if any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError("delays are >= 0")
    return delays


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reapi_server.testing.stripe_sim",
        description="A simulated Stripe account on loopback (test double; no real money).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument(
        "--webhook", action="append", default=[], metavar="URL", help="an endpoint (repeatable)"
    )
    parser.add_argument(
        "--webhook-secret",
        action="append",
        default=[],
        metavar="WHSEC",
        help="its signing secret, in the order of --webhook (one secret serves them all)",
    )
    parser.add_argument(
        "--retry-delays",
        type=_delays,
        default=DEFAULT_RETRY_DELAYS,
        metavar="S,S,...",
        help="seconds before each webhook retry (default: 1,2,4,...,128)",
    )
    parser.add_argument("--account-name", default="reapi demo")
    parser.add_argument("--public-url", help="the URL browsers reach it at, when not its base URL")
    parser.add_argument(
        "--tax-percent",
        type=float,
        default=0.0,
        help="Stripe Tax on top of prices for sessions with automatic_tax (default: 0)",
    )
    return parser


def _endpoints(urls: list[str], secrets: list[str]) -> list[WebhookEndpoint]:
    if len(secrets) > 1 and len(secrets) != len(urls):
        raise SystemExit("give one --webhook-secret, or one per --webhook")
    endpoints = []
    for index, url in enumerate(urls):
        endpoint = WebhookEndpoint(url)
        if secrets:
            endpoint.secret = secrets[index if len(secrets) > 1 else 0]
        endpoints.append(endpoint)
    return endpoints


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sim = StripeSimulator(
        secret_key=args.secret_key,
        webhooks=_endpoints(args.webhook, args.webhook_secret),
        retry_delays=args.retry_delays,
        account_name=args.account_name,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        tax_percent=args.tax_percent,
    )
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sim.start()
    try:
        print(f"stripe simulator: {sim.base_url} key={sim.secret_key}", flush=True)
        for endpoint in sim.webhook_endpoints:
            print(f"webhook: {endpoint.url} secret={endpoint.secret}", flush=True)
        stopped.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
