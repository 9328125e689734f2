"""A simulated Stripe on loopback, written from Stripe's API reference, for tests and the demo.

The official `stripe` package talks to it unchanged:

    from reapi_server.testing.stripe_sim import StripeSimulator, WebhookEndpoint

    with StripeSimulator(webhooks=[WebhookEndpoint(receiver_url, "whsec_test")]) as sim:
        client = stripe.StripeClient(sim.secret_key, base_addresses={"api": sim.base_url})

Customers, Checkout Sessions with a hosted page (Pay / Decline), PaymentIntents (off-session
confirmations that need authentication or are declined), charges, refunds, invoices with a
PDF, disputes and events; webhooks signed like Stripe's and retried on a compressed schedule;
a control API under `/__sim__/stripe/` and the same on the Python object. A test double, never
a fallback in production code. `python -m reapi_server.testing.stripe_sim --help` runs one.
"""

from ._customers import TEST_CARDS, TestCard
from ._errors import StripeError
from ._payments import PAYMENT_OUTCOMES
from ._simulator import DEFAULT_SECRET_KEY, StripeSimulator
from ._webhooks import DEFAULT_RETRY_DELAYS, Delivery, Tamper, WebhookEndpoint, signature_header

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SECRET_KEY",
    "PAYMENT_OUTCOMES",
    "TEST_CARDS",
    "Delivery",
    "StripeError",
    "StripeSimulator",
    "Tamper",
    "TestCard",
    "WebhookEndpoint",
    "signature_header",
]
